"""``tf.compat.v1`` names: the deprecated ``nn.softmax_cross_entropy_with_logits`` and ``losses``."""

from ... import losses
from . import nn

__all__ = ["losses", "nn"]
