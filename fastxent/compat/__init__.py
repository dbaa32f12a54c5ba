"""TensorFlow 1.x names (``tf.compat``)."""

from . import v1

__all__ = ["v1"]
