"""fastxent: fast, exact softmax cross-entropy for NumPy arrays.

The TensorFlow softmax cross-entropy family, with the gradient computed in the
same pass over the logits:

- ``fastxent.nn.sparse_softmax_cross_entropy_with_logits``
- ``fastxent.nn.softmax_cross_entropy_with_logits`` (``..._v2``)
- ``fastxent.compat.v1.nn.softmax_cross_entropy_with_logits`` (deprecated, ``dim``)
- ``fastxent.nn.fused_linear_cross_entropy`` (the logits ``features @ weights`` never whole)
- ``fastxent.losses.softmax_cross_entropy``, ``sparse_softmax_cross_entropy``,
  ``compute_weighted_loss`` and ``Reduction``

and for fitting linear models: ``fastxent.linear_cross_entropy`` (loss and
gradients of ``X @ coef + intercept`` without the whole logits),
``linear_cross_entropy_hessp``, ``LinearObjective`` (for SciPy's optimizers) and
``fastxent.sklearn.SoftmaxRegression``.
"""

from . import compat, losses, nn
from ._core.errors import InvalidArgumentError
from .linear import LinearObjective, linear_cross_entropy, linear_cross_entropy_hessp
from .losses import Reduction
from .nn import (
    fused_linear_cross_entropy,
    softmax_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_v2,
    sparse_softmax_cross_entropy_with_logits,
)

__version__ = "0.1.0"

__all__ = [
    "InvalidArgumentError",
    "LinearObjective",
    "Reduction",
    "compat",
    "fused_linear_cross_entropy",
    "linear_cross_entropy",
    "linear_cross_entropy_hessp",
    "losses",
    "nn",
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits",
]
