"""``tf.compat.v1.losses``: weighted, reduced softmax cross-entropy losses.

The reduction's per-row factor ``w_i / denominator`` depends on the weights
only, so it is computed first and handed to the kernel, which writes the loss
and the already-scaled gradient in one pass over the logits (``fastxent._core.plan``).
Sums are accumulated in float64 whatever the input dtype.
"""

from ._core import plan as _core
from ._core.checks import Reduction
from ._core.reduce import REDUCTION_CODES

__all__ = [
    "Reduction",
    "compute_weighted_loss",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
]


def softmax_cross_entropy(
    onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None, loss_collection=None,
    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, *, return_grad=False, out=None,
    grad_out=None, n_threads=None, class_weight=None,
):
    """Weighted softmax cross-entropy of label distributions over the last axis.

    With ``label_smoothing = eps > 0`` the labels used are
    ``onehot_labels * (1 - eps) + eps / num_classes``; then the per-row loss of
    :func:`fastxent.nn.softmax_cross_entropy_with_logits`; then
    :func:`compute_weighted_loss`.

    Parameters
    ----------
    onehot_labels : array_like, real numeric, the shape of ``logits``
    logits : array_like of float16/32/64 or bfloat16, shape ``[batch..., num_classes]``
    weights : scalar or array_like
        A scalar, or the rank of the loss (``logits.ndim - 1``) with each
        dimension 1 or equal to the loss's.
    label_smoothing : float in [0, 1]
    scope, loss_collection : unused, for TensorFlow compatibility
    reduction : str
        One of :class:`Reduction`.
    return_grad : bool
        Also return the gradient of the (summed) result with respect to ``logits``:
        ``w_i / denominator * (softmax * sum(y') - y')``.
    out : ndarray, optional
        For the result: shape ``()``, or the loss's shape for ``Reduction.NONE``.
    grad_out, n_threads
        As in :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`.
    class_weight : array_like, shape ``(num_classes,)``, optional
        Per-class weights of the smoothed labels (PyTorch's ``weight`` with probability
        targets): the row loss is ``-sum_j w_j y'_j log p_j``. The reductions are
        unchanged, so ``MEAN`` with unit sample weights divides by the number of rows, as
        PyTorch's mean does for probability targets. Not on Dask arrays whose class axis is
        split across chunks.

    Returns
    -------
    loss : scalar of ``logits``' dtype, or ndarray for ``Reduction.NONE``
    dlogits : ndarray
        With ``return_grad=True``.

    Examples
    --------
    >>> import fastxent
    >>> round(float(fastxent.losses.softmax_cross_entropy(
    ...     [[0, 1, 0], [0, 0, 1]], [[.05, .95, 0], [.1, .8, .1]],
    ...     weights=[.3, .7], label_smoothing=0.2)), 5)
    0.57618
    """
    return _core.dense(
        onehot_labels, logits, weights=weights, reduction=reduction,
        label_smoothing=label_smoothing, class_weight=class_weight, return_grad=return_grad,
        out=out, grad_out=grad_out, n_threads=n_threads, labels_name="onehot_labels",
        same_shape=True)


def sparse_softmax_cross_entropy(
    labels, logits, weights=1.0, scope=None, loss_collection=None,
    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, *, return_grad=False, out=None,
    grad_out=None, n_threads=None, validate=None, ignore_index=None, class_weight=None,
    label_smoothing=0.0,
):
    """Weighted softmax cross-entropy of integer labels.

    ``labels`` (and ``weights``) may carry a trailing dimension of 1 (``[N, 1]``
    with logits ``[N, C]``), which is dropped; then the per-row loss of
    :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`; then
    :func:`compute_weighted_loss`.

    Parameters
    ----------
    labels : array_like of int, shape ``logits.shape[:-1]`` (or with a trailing 1)
    logits : array_like of float16/32/64 or bfloat16
    weights, scope, loss_collection, reduction, return_grad, out, grad_out, n_threads
        As in :func:`softmax_cross_entropy`.
    validate : bool, optional
        As in :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`.
    ignore_index, class_weight, label_smoothing : optional
        PyTorch's options, as in
        :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`. Ignored rows count as weight 0, so no reduction counts them:
        ``SUM_OVER_BATCH_SIZE`` divides by the rows not ignored. With
        ``class_weight``, ``MEAN`` divides by ``sum(weights * class_weight[labels])``
        over the rows not ignored, which is PyTorch's ``reduction="mean"``.

    Returns
    -------
    loss : scalar of ``logits``' dtype, or ndarray for ``Reduction.NONE``
    dlogits : ndarray
        With ``return_grad=True``: ``w_i / denominator * (softmax - onehot)``.

    Examples
    --------
    >>> import fastxent
    >>> round(float(fastxent.losses.sparse_softmax_cross_entropy(
    ...     [2, 0, 1], [[10., 0, 0], [0, 10, 0], [0, 0, 10]], weights=2.3)), 4)
    23.0002
    """
    if (validate is None and ignore_index is None and class_weight is None
            and type(label_smoothing) in (float, int) and label_smoothing == 0
            and type(reduction) is str and reduction in REDUCTION_CODES):
        result = _core.fast_sparse(logits, labels, return_grad, REDUCTION_CODES[reduction],
                                   weights, out, grad_out, n_threads)
        if result is not None:
            return result
    return _core.sparse(
        labels, logits, weights=weights, reduction=reduction, return_grad=return_grad,
        out=out, grad_out=grad_out, n_threads=n_threads, validate=validate,
        ignore_index=ignore_index, class_weight=class_weight, label_smoothing=label_smoothing,
        squeeze=True)


def compute_weighted_loss(
    losses, weights=1.0, scope=None, loss_collection=None,
    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, *, return_grad=False, out=None,
    grad_out=None, n_threads=None,
):
    """Weight and reduce ``losses`` (``tf.compat.v1.losses.compute_weighted_loss``).

    ``weighted = losses * weights``, then by ``reduction``:

    - ``NONE``: ``weighted``, the shape of ``losses``;
    - ``SUM``: ``sum(weighted)``;
    - ``MEAN``: ``sum(weighted) / sum(weights broadcast to losses)``;
    - ``SUM_BY_NONZERO_WEIGHTS``: ``sum(weighted) /`` the number of losses whose
      weight is not 0;
    - ``SUM_OVER_BATCH_SIZE``: ``sum(weighted) / losses.size``.

    A zero denominator gives exactly 0 (and a zero gradient). Sums are in float64.

    Parameters
    ----------
    losses : array_like of float (integers and bools are taken as float64)
    weights : scalar or array_like
        A scalar, or the rank of ``losses`` with each dimension 1 or equal.
    scope, loss_collection : unused, for TensorFlow compatibility
    reduction : str
    return_grad : bool
        Also return ``dlosses``, the gradient with respect to ``losses``
        (``weights / denominator`` broadcast to ``losses``' shape).
    out, grad_out : ndarray, optional
        For the result and for ``dlosses``.
    n_threads : unused here (no per-element kernel); accepted for uniformity.

    Examples
    --------
    >>> import numpy as np, fastxent
    >>> losses = np.arange(24.0).reshape(3, 2, 4)
    >>> weights = [[[17, 0, 2, 5]], [[5, 31, 17, 5]], [[7, 3, 11, 5]]]
    >>> float(fastxent.losses.compute_weighted_loss(losses, weights, reduction="weighted_sum"))
    2470.0
    """
    return _core.weighted(
        losses, weights, reduction, return_grad=return_grad, out=out, grad_out=grad_out,
        n_threads=n_threads)
