"""``tf.compat.v1.losses``: weighted, reduced softmax cross-entropy losses.

The reduction's per-row factor ``w_i / denominator`` depends on the weights
only, so it is computed first and handed to the kernel, which writes the loss
and the already-scaled gradient in one pass over the logits. Sums are
accumulated in float64 whatever the input dtype.
"""

import math

import numpy as np

from . import _checks, _extras, _rows
from ._dispatch import backend_for

__all__ = [
    "Reduction",
    "compute_weighted_loss",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
]


class Reduction:
    """Types of loss reduction (``tf.compat.v1.losses.Reduction``).

    Plain strings; a string is accepted wherever a Reduction is.
    """

    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key):
        """Return ``key`` if it is a reduction, else raise ValueError."""
        if not isinstance(key, str) or key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key!r}; expected one of {cls.all()}")
        return key


class _Weighting:
    """Weights broadcast to the losses' shape, and the reduction's denominator."""

    def __init__(self, weights, losses_shape, reduction, xp=np):
        self.xp = xp
        self.reduction = Reduction.validate(reduction)
        if weights is None:
            raise ValueError("weights must be given (a scalar or an array), got None")
        w = xp.asarray(weights)
        if w.dtype.kind not in "biuf":
            raise TypeError(f"weights must be real numbers, got dtype {w.dtype}")
        losses_shape = tuple(losses_shape)
        if w.ndim != 0 and (
            w.ndim != len(losses_shape)
            or any(d not in (1, n) for d, n in zip(w.shape, losses_shape))
        ):
            raise ValueError(
                f"weights can not be broadcast to values. values.shape={losses_shape}, "
                f"weights.shape={w.shape}"
            )
        self.weights = w.astype(np.float64)
        self.broadcast = xp.broadcast_to(self.weights, losses_shape)
        if self.reduction in (Reduction.NONE, Reduction.SUM):
            self.denominator = 1.0
        elif self.reduction == Reduction.MEAN:
            self.denominator = float(xp.sum(self.broadcast))
        elif self.reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
            self.denominator = float(xp.count_nonzero(self.broadcast))
        else:
            self.denominator = float(math.prod(losses_shape))
        # A zero denominator gives exactly 0 and a zero gradient (div_no_nan).
        self.zero = self.denominator == 0

    def reweight(self, weights, denominator):
        """Use these per-loss ``weights`` (the losses' shape) and ``denominator`` instead."""
        self.broadcast = weights
        self.denominator = denominator
        self.zero = denominator == 0

    @property
    def result_shape(self):
        return self.broadcast.shape if self.reduction == Reduction.NONE else ()

    def row_scale(self):
        """The gradient factor ``w_i / denominator``, per row, or one value for all."""
        xp = self.xp
        if self.weights.ndim == 0:
            return (self.weights / self.denominator).reshape(1)
        return xp.ascontiguousarray(self.broadcast / self.denominator).reshape(-1)

    def reduce(self, losses, dtype, out):
        """The reduced value of per-row ``losses`` (summed in float64), as ``dtype``, into ``out``.

        A scalar result is a NumPy scalar for NumPy inputs and a 0-d array on the
        GPU (it stays on the device).
        """
        xp = self.xp
        if self.reduction == Reduction.NONE:
            if out is None:
                return (losses * self.broadcast).astype(dtype)
            xp.multiply(losses, self.broadcast, out=out, casting="same_kind")
            return out
        if self.zero:
            value = xp.zeros((), np.float64)
        else:
            value = xp.sum(losses * self.broadcast, dtype=np.float64) / self.denominator
        if out is not None:
            out[()] = value
            return out
        result = xp.asarray(value).astype(dtype)
        return result[()] if xp is np else result


def _weighted_xent(backend, logits, labels, weighting, *, sparse, label_coef, return_grad,
                   out, grad_out, n_threads):
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=weighting.result_shape,
        grad_shape=logits.shape, dtype=logits.dtype, inputs={"logits": logits, "labels": labels},
        in_place_of="logits", xp=backend.xp)
    if weighting.zero:
        grad = (_rows.zeros_like_result(backend.xp, grad_out, logits.shape, logits.dtype)
                if return_grad else None)
        losses = backend.xp.zeros(logits.shape[:-1])
    else:
        losses, grad, _ = _rows.fused(
            backend, logits, labels, sparse=sparse,
            loss_dtype=_checks.compute_dtype(logits.dtype),
            want_grad=return_grad, grad_out=grad_out, scale=weighting.row_scale(),
            label_coef=label_coef, n_threads=n_threads,
        )
    loss = weighting.reduce(losses, logits.dtype, out)
    return (loss, grad) if return_grad else loss


def _weighted_xent_extras(backend, logits, extras, weighting, *, return_grad, out, grad_out,
                          n_threads):
    """``_weighted_xent`` with PyTorch's options: ignored rows weigh 0 and a mean divides by
    the rows' class weights (``fastxent._extras``)."""
    xp = backend.xp
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=weighting.result_shape,
        grad_shape=logits.shape, dtype=logits.dtype, inputs={"logits": logits},
        in_place_of="logits", xp=xp)
    batch_shape = logits.shape[:-1]
    weights = extras.times_keep(xp.broadcast_to(weighting.weights, batch_shape).reshape(-1))
    denominator = weighting.denominator
    if weighting.reduction == Reduction.MEAN:
        denominator = float(xp.sum(extras.row_mass(weights)))
    elif weighting.reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
        denominator = float(xp.count_nonzero(weights))
    elif weighting.reduction == Reduction.SUM_OVER_BATCH_SIZE and extras.keep is not None:
        denominator = float(xp.count_nonzero(extras.keep))
    weighting.reweight(weights.reshape(batch_shape), denominator)
    if weighting.zero:
        grad = (_rows.zeros_like_result(xp, grad_out, logits.shape, logits.dtype)
                if return_grad else None)
        losses = xp.zeros(batch_shape)
    else:
        losses, grad = _extras.sparse_call(
            backend, logits, extras, weights / weighting.denominator, return_grad=return_grad,
            grad_out=grad_out, n_threads=n_threads)
        losses = losses.reshape(batch_shape)
    loss = weighting.reduce(losses, logits.dtype, out)
    return (loss, grad) if return_grad else loss


def softmax_cross_entropy(
    onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None, loss_collection=None,
    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, *, return_grad=False, out=None,
    grad_out=None, n_threads=None,
):
    """Weighted softmax cross-entropy of label distributions over the last axis.

    With ``label_smoothing = eps > 0`` the labels used are
    ``onehot_labels * (1 - eps) + eps / num_classes``; then the per-row loss of
    :func:`fastxent.nn.softmax_cross_entropy_with_logits`; then
    :func:`compute_weighted_loss`.

    Parameters
    ----------
    onehot_labels : array_like, real numeric, the shape of ``logits``
    logits : array_like of float16/32/64, shape ``[batch..., num_classes]``
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
    backend = backend_for(onehot_labels=onehot_labels, logits=logits, weights=weights)
    if getattr(backend, "lazy", False):
        return _lazy_dense(backend, onehot_labels, logits, weights, label_smoothing, reduction,
                           return_grad, out, grad_out, n_threads)
    xp = backend.xp
    logits = _checks.logits_array(logits, xp)
    if onehot_labels is None:
        raise ValueError("onehot_labels must be given, got None")
    onehot_labels = xp.asarray(onehot_labels)
    if onehot_labels.shape != logits.shape:
        raise ValueError(f"onehot_labels shape {onehot_labels.shape} must equal "
                         f"logits shape {logits.shape}")
    labels, _ = _checks.dense_labels_array(onehot_labels, logits.shape, logits.dtype, xp,
                                           name="onehot_labels")
    eps = _checks.label_smoothing_value(label_smoothing)
    num_classes = logits.shape[-1]
    label_coef = (1.0 - eps, eps / num_classes if num_classes else 0.0)
    weighting = _Weighting(weights, logits.shape[:-1], reduction, xp)
    n_threads = _checks.check_n_threads(n_threads)
    return _weighted_xent(backend, logits, labels, weighting, sparse=False,
                          label_coef=label_coef, return_grad=return_grad, out=out,
                          grad_out=grad_out, n_threads=n_threads)


def _squeeze_last(xp, array, rank):
    """Drop a trailing dimension of 1 from an array of ``rank`` (TF's squeezable dimension)."""
    if array is None:
        return None
    a = xp.asarray(array)
    if a.ndim == rank and a.ndim > 0 and a.shape[-1] == 1:
        return a[..., 0]
    return array


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
    logits : array_like of float16/32/64
    weights, scope, loss_collection, reduction, return_grad, out, grad_out, n_threads
        As in :func:`softmax_cross_entropy`.
    validate : bool, optional
        As in :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`.
    ignore_index, class_weight, label_smoothing : optional
        PyTorch's options, as in
        :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits` (not on Dask
        arrays). Ignored rows count as weight 0, so no reduction counts them:
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
    backend = backend_for(labels=labels, logits=logits, weights=weights)
    extras = _extras.SparseExtras.any_given(ignore_index, class_weight, label_smoothing)
    if getattr(backend, "lazy", False):
        if extras:
            raise NotImplementedError("ignore_index, class_weight and label_smoothing are not "
                                      "available on Dask arrays")
        return _lazy_sparse(backend, labels, logits, weights, reduction, return_grad, out,
                            grad_out, n_threads, validate)
    xp = backend.xp
    logits = _checks.logits_array(logits, xp)
    labels = _squeeze_last(xp, labels, logits.ndim)
    weights = _squeeze_last(xp, weights, logits.ndim)
    labels = _checks.sparse_labels_array(labels, logits.shape, xp)
    num_classes = logits.shape[-1]
    if num_classes == 0:
        raise ValueError(f"logits must have at least one class; got shape {logits.shape}")
    weighting = _Weighting(weights, logits.shape[:-1], reduction, xp)
    n_threads = _checks.check_n_threads(n_threads)
    if extras:
        options = _extras.SparseExtras(
            xp, _extras.check_labels(labels, num_classes, backend, validate, ignore_index),
            num_classes, ignore_index, class_weight, label_smoothing)
        return _weighted_xent_extras(backend, logits, options, weighting, return_grad=return_grad,
                                     out=out, grad_out=grad_out, n_threads=n_threads)
    label_rows = _checks.sparse_label_rows(labels, num_classes, backend, validate)
    return _weighted_xent(backend, logits, label_rows, weighting, sparse=True, label_coef=None,
                          return_grad=return_grad, out=out, grad_out=grad_out,
                          n_threads=n_threads)


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
    backend = backend_for(losses=losses, weights=weights)
    if losses is None:
        raise ValueError("losses must be given, got None")
    if getattr(backend, "lazy", False):
        return _lazy_weighted(backend, losses, weights, reduction, return_grad, out, grad_out)
    xp = backend.xp
    losses = xp.asarray(losses)
    if losses.dtype.kind in "biu":
        losses = losses.astype(np.float64)
    elif losses.dtype.kind != "f":
        raise TypeError(f"losses must be real numbers, got dtype {losses.dtype}")
    _checks.check_n_threads(n_threads)
    weighting = _Weighting(weights, losses.shape, reduction, xp)
    dtype = losses.dtype.newbyteorder("=")
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=weighting.result_shape,
        grad_shape=losses.shape, dtype=dtype, inputs={"losses": losses, "weights": weights},
        xp=xp)
    result = weighting.reduce(losses.astype(np.float64, copy=False), dtype, out)
    if not return_grad:
        return result
    if weighting.zero:
        return result, _rows.zeros_like_result(xp, grad_out, losses.shape, dtype)
    scale = weighting.broadcast / weighting.denominator
    if grad_out is None:
        return result, scale.astype(dtype)
    grad_out[...] = scale
    return result, grad_out


# --- Dask arrays (fastxent._dask): the same reductions, lazily ----------------------------------

def _lazy_sparse(backend, labels, logits, weights, reduction, return_grad, out, grad_out,
                 n_threads, validate):
    logits = backend._as_dask(logits, "logits")
    labels = backend._as_dask(labels, "labels")
    if labels.ndim == logits.ndim and labels.ndim > 0 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if weights is not None and np.ndim(weights) == logits.ndim and np.shape(weights)[-1] == 1:
        weights = weights[..., 0]
    factor, zero, reduce = backend.weighting(weights, logits.shape[:-1], reduction)
    result = backend.sparse_softmax_cross_entropy_with_logits(
        labels, logits, return_grad, out, grad_out, _checks.check_n_threads(n_threads),
        validate, scale=(factor, zero))
    if return_grad:
        return reduce(result[0], logits.dtype), result[1]
    return reduce(result, logits.dtype)


def _lazy_dense(backend, onehot_labels, logits, weights, label_smoothing, reduction,
                return_grad, out, grad_out, n_threads):
    logits = backend._as_dask(logits, "logits")
    onehot_labels = backend._as_dask(onehot_labels, "onehot_labels")
    if onehot_labels.shape != logits.shape:
        raise ValueError(f"onehot_labels shape {onehot_labels.shape} must equal "
                         f"logits shape {logits.shape}")
    eps = _checks.label_smoothing_value(label_smoothing)
    factor, zero, reduce = backend.weighting(weights, logits.shape[:-1], reduction)
    result = backend.dense_softmax_cross_entropy(
        onehot_labels, logits, -1, return_grad, False, out, grad_out,
        _checks.check_n_threads(n_threads), label_smoothing=eps, scale=(factor, zero))
    if return_grad:
        return reduce(result[0], logits.dtype), result[1]
    return reduce(result, logits.dtype)


def _lazy_weighted(backend, losses, weights, reduction, return_grad, out, grad_out):
    backend._no_out(out, grad_out)
    losses = backend._as_dask(losses, "losses")
    if losses.dtype.kind in "biu":
        losses = losses.astype(np.float64)
    elif losses.dtype.kind != "f":
        raise TypeError(f"losses must be real numbers, got dtype {losses.dtype}")
    factor, _, reduce = backend.weighting(weights, losses.shape, reduction)
    result = reduce(losses * factor, losses.dtype)
    return (result, factor.astype(losses.dtype)) if return_grad else result
