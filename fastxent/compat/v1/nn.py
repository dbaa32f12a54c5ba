"""``tf.compat.v1.nn``: the deprecated softmax cross-entropy with ``dim``."""

import warnings

from ...nn import dense as _dense
from ...nn import sparse_softmax_cross_entropy_with_logits

__all__ = ["softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits"]


def softmax_cross_entropy_with_logits(
    *, labels=None, logits=None, dim=-1, name=None, axis=None, return_grad=False,
    out=None, grad_out=None, n_threads=None,
):
    """Deprecated v1 softmax cross-entropy: ``dim`` is the class axis.

    Identical to :func:`fastxent.nn.softmax_cross_entropy_with_logits` except that
    no gradient flows into ``labels`` (there is no ``return_labels_grad``) and a
    DeprecationWarning is emitted. ``axis=`` alone is accepted as a synonym of
    ``dim``; both given with different values is a ValueError.
    """
    warnings.warn(
        "softmax_cross_entropy_with_logits (v1) is deprecated: use "
        "fastxent.nn.softmax_cross_entropy_with_logits, which also gives the "
        "gradient with respect to labels",
        DeprecationWarning,
        stacklevel=2,
    )
    if axis is not None:
        if dim != -1 and dim != axis:
            raise ValueError(f"dim ({dim}) and axis ({axis}) are the same argument; "
                             "give one, or both equal")
        dim = axis
    return _dense(labels, logits, dim, return_grad=return_grad, return_labels_grad=False,
                  out=out, grad_out=grad_out, n_threads=n_threads)
