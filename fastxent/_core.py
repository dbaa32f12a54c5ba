"""The one path from the public functions to a backend.

Every public function is an adapter over ``sparse``, ``dense`` or ``weighted`` here:
check the arguments (``fastxent._checks``, once, before any output is written), lay the
batch out as rows (``fastxent._rows``), compute the reduction's per-row factor
``w_i / denominator`` (``Weighting``), then make the one backend call, which writes the
loss and the already-scaled gradient in one pass over the logits. Written against the
array namespace of the inputs (NumPy, CuPy). Dask arrays go to ``fastxent._dask``, a
frontend over the same pieces.
"""

import math

import numpy as np

from . import _checks, _rows
from ._backend import backend_for, default_backend
from ._options import SparseOptions, class_weight_array

__all__ = ["REDUCTION_CODES", "Reduction", "Weighting", "dense", "fast_sparse", "sparse",
           "weighted"]


class Reduction:
    """Types of loss reduction (``tf.compat.v1.losses.Reduction``).

    Plain strings; a string is accepted wherever a Reduction is, and so are the
    lowercase names without ``weighted_`` (``"mean"``, ``"sum"``, Keras's
    ``"sum_over_batch_size"``; PyTorch's ``"mean"``, ``"sum"`` and ``"none"`` mean the same).
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
        """The reduction ``key`` names (a Reduction, or a short name), else ValueError."""
        if isinstance(key, str):
            key = _REDUCTION_NAMES.get(key, key)
        if not isinstance(key, str) or key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key!r}; expected one of {cls.all()} "
                             f"or {tuple(_REDUCTION_NAMES)}")
        return key


_REDUCTION_NAMES = {"mean": Reduction.MEAN, "sum": Reduction.SUM,
                    "sum_over_batch_size": Reduction.SUM_OVER_BATCH_SIZE,
                    "sum_by_nonzero_weights": Reduction.SUM_BY_NONZERO_WEIGHTS,
                    "sum_over_nonzero_weights": Reduction.SUM_BY_NONZERO_WEIGHTS}


# fast_sparse's codes, every name of a reduction included: -1 is nn's per-row loss
REDUCTION_CODES = {Reduction.NONE: 0, Reduction.SUM: 1, Reduction.MEAN: 2,
                   Reduction.SUM_OVER_BATCH_SIZE: 3, Reduction.SUM_BY_NONZERO_WEIGHTS: 4}
REDUCTION_CODES.update({name: REDUCTION_CODES[key] for name, key in _REDUCTION_NAMES.items()})


def fast_sparse(logits, labels, want_grad, reduction, weights, out, grad_out, n_threads):
    """The default backend's whole-call kernel for the calls most users make
    (``fastxent._kernels.fast_sparse``): None where ``sparse`` must run instead. Bound on
    first use, so that importing fastxent loads no kernels."""
    global fast_sparse
    fast_sparse = default_backend().fast_sparse
    return fast_sparse(logits, labels, want_grad, reduction, weights, out, grad_out, n_threads)


def weights_array(weights, losses_shape, xp):
    """``weights`` checked against the losses' shape (TensorFlow's broadcast rule), float64."""
    if weights is None:
        raise ValueError("weights must be given (a scalar or an array), got None")
    w = _checks.real_array(xp.asarray(weights), "weights")
    losses_shape = tuple(losses_shape)
    if w.ndim != 0 and (w.ndim != len(losses_shape)
                        or any(d not in (1, n) for d, n in zip(w.shape, losses_shape))):
        raise ValueError(f"weights can not be broadcast to values. values.shape={losses_shape}, "
                         f"weights.shape={w.shape}")
    return w.astype(np.float64)


class Weighting:
    """Weights broadcast to the losses' shape, and the reduction's denominator.

    ``mass`` (the losses' shape, float64), when given, multiplies the weights in what
    ``MEAN`` sums, and ``keep`` marks the losses that count at all (PyTorch's options:
    ``a * u[t]`` and the rows not ignored).
    """

    def __init__(self, weights, losses_shape, reduction, xp=np, mass=None, keep=None):
        self.xp = xp
        self.reduction = Reduction.validate(reduction)
        self.weights = weights_array(weights, losses_shape, xp)
        self.broadcast = xp.broadcast_to(self.weights, tuple(losses_shape))
        counted = self.broadcast if keep is None else xp.where(keep, self.broadcast, 0.0)
        if self.reduction in (Reduction.NONE, Reduction.SUM):
            self.denominator = 1.0
        elif self.reduction == Reduction.MEAN:
            self.denominator = float(xp.sum(counted if mass is None else self.broadcast * mass))
        elif self.reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
            self.denominator = float(xp.count_nonzero(counted))
        elif keep is not None:
            self.denominator = float(xp.count_nonzero(keep))
        else:
            self.denominator = float(math.prod(losses_shape))
        # A zero denominator gives exactly 0 and a zero gradient (div_no_nan).
        self.zero = self.denominator == 0

    @property
    def result_shape(self):
        return self.broadcast.shape if self.reduction == Reduction.NONE else ()

    def row_scale(self):
        """The gradient factor ``w_i / denominator``, per row, or one value for all."""
        if self.weights.ndim == 0:
            return (self.weights / self.denominator).reshape(1)
        return self.xp.ascontiguousarray(self.broadcast / self.denominator).reshape(-1)

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


def squeeze_last(xp, array, rank):
    """Drop a trailing dimension of 1 from an array of ``rank`` (TF's squeezable dimension)."""
    if array is None:
        return None
    a = xp.asarray(array)
    if a.ndim == rank and a.ndim > 0 and a.shape[-1] == 1:
        return a[..., 0]
    return array


def _scalar_if_0d(result, out):
    return result[()] if out is None and result.ndim == 0 else result


def _zero_grad(xp, grad_out, shape, dtype):
    if grad_out is None:
        return xp.zeros(shape, dtype)
    grad_out[...] = 0
    return grad_out


_MASKED = int(np.iinfo(np.int64).min)   # the label of a row masked by ``where``


def sparse(labels, logits, *, axis=-1, weights=None, reduction=None, return_grad=False,
           out=None, grad_out=None, n_threads=None, validate=None, ignore_index=None,
           class_weight=None, label_smoothing=0.0, where=None, squeeze=False):
    """Softmax cross-entropy of integer labels along the class ``axis``, per row
    (``reduction=None``: ``nn``'s function) or weighted and reduced (``losses``'). ``squeeze``
    drops a trailing 1 from ``labels`` and ``weights``; ``where`` masks rows (loss and
    gradient 0, labels unchecked). Returns the loss, and the gradient with ``return_grad``."""
    backend = (backend_for(labels=labels, logits=logits) if reduction is None
               else backend_for(labels=labels, logits=logits, weights=weights))
    xp = backend.xp
    logits = _checks.logits_array(logits, xp)
    axis = _checks.normalize_axis(axis, logits.ndim)
    if squeeze:
        labels = squeeze_last(xp, labels, logits.ndim)
        weights = squeeze_last(xp, weights, logits.ndim)
    labels = _checks.sparse_labels_array(labels, logits.shape, xp, axis=axis)
    _checks.at_least_one_class(logits.shape, axis)
    num_classes = logits.shape[axis]
    batch = labels.shape
    if where is not None and xp.ndim(where) == logits.ndim:
        raise NotImplementedError(
            "where= of single logits is available for label distributions "
            "(softmax_cross_entropy_with_logits); for integer labels pass a mask of rows")
    mask = _checks.row_mask(where, batch, xp)
    if mask is not None:
        ignore_index = _MASKED if ignore_index is None else ignore_index
    options = (SparseOptions(ignore_index, class_weight, label_smoothing, num_classes, xp)
               if SparseOptions.given(ignore_index, class_weight, label_smoothing) else None)
    n_threads = _checks.check_n_threads(n_threads)
    if mask is not None:
        labels = xp.where(mask, labels, options.ignore_index)
    label_rows = _checks.sparse_label_rows(
        labels, num_classes, backend, validate,
        ignore_index=None if options is None else options.ignore_index)
    weighting = None
    if reduction is not None:
        weighting = Weighting(
            weights, batch, reduction, xp,
            mass=None if options is None else options.row_mass(label_rows).reshape(batch),
            keep=None if options is None or options.ignore_index is None
            else options.keep(label_rows).reshape(batch))
    result_shape = batch if weighting is None else weighting.result_shape
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=result_shape,
        grad_shape=logits.shape, dtype=logits.dtype, inputs={"logits": logits, "labels": labels},
        in_place_of="logits", xp=xp)
    kernel_options = {} if options is None else options.kernel_options()
    if weighting is None:
        loss, grad, _ = _rows.fused(backend, logits, label_rows, axis=axis, sparse=True,
                                    loss_dtype=logits.dtype, out=out, want_grad=return_grad,
                                    grad_out=grad_out, options=kernel_options,
                                    n_threads=n_threads)
        loss = _scalar_if_0d(loss, out)
        return (loss, grad) if return_grad else loss
    if weighting.zero:
        grad = _zero_grad(xp, grad_out, logits.shape, logits.dtype) if return_grad else None
        losses = xp.zeros(batch)
    else:
        losses, grad, _ = _rows.fused(
            backend, logits, label_rows, axis=axis, sparse=True,
            loss_dtype=_checks.compute_dtype(logits.dtype), want_grad=return_grad,
            grad_out=grad_out, scale=weighting.row_scale(), options=kernel_options,
            n_threads=n_threads)
    loss = weighting.reduce(losses, logits.dtype, out)
    return (loss, grad) if return_grad else loss


def _sum_to_shape(xp, full, shape):
    """Sum ``full`` over the axes along which an array of ``shape`` was broadcast to it."""
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and full.shape[lead + k] != 1)
    if not axes:
        return full
    return xp.sum(full, axis=axes, dtype=np.float64).reshape(shape).astype(full.dtype)


def dense(labels, logits, *, axis=-1, weights=None, reduction=None, label_smoothing=0.0,
          class_weight=None, return_grad=False, return_labels_grad=False, out=None,
          grad_out=None, n_threads=None, where=None, labels_name="labels", same_shape=False):
    """Softmax cross-entropy of label distributions along ``axis``, per row
    (``reduction=None``) or weighted and reduced; ``same_shape``: the labels must have
    the logits' shape exactly (the losses), else they broadcast to it (``nn``); ``where``
    masks rows (their loss and gradients are 0); ``class_weight`` multiplies the labels
    class by class (PyTorch's ``weight`` for probability targets). Returns the loss, then the
    gradients asked for."""
    if isinstance(axis, tuple):
        return _dense_over_axes(
            labels, logits, axis, weights=weights, reduction=reduction,
            label_smoothing=label_smoothing, class_weight=class_weight, return_grad=return_grad,
            return_labels_grad=return_labels_grad, out=out, grad_out=grad_out,
            n_threads=n_threads, where=where, labels_name=labels_name, same_shape=same_shape)
    backend = (backend_for(labels=labels, logits=logits) if reduction is None
               else backend_for(labels=labels, logits=logits, weights=weights))
    xp = backend.xp
    logits = _checks.logits_array(logits, xp)
    axis = _checks.normalize_axis(axis, logits.ndim)
    _checks.at_least_one_class(logits.shape, axis)
    if same_shape:
        if labels is None:
            raise ValueError(f"{labels_name} must be given, got None")
        labels = xp.asarray(labels)
        if labels.shape != logits.shape:
            raise ValueError(f"{labels_name} shape {labels.shape} must equal "
                             f"logits shape {logits.shape}")
    labels, labels_shape = _checks.dense_labels_array(labels, logits.shape, logits.dtype, xp,
                                                      name=labels_name)
    eps = _checks.label_smoothing_value(label_smoothing)
    num_classes = logits.shape[axis]
    label_coef = (1.0 - eps, eps / num_classes)
    kernel_options = ({} if class_weight is None
                      else {"class_weight": class_weight_array(class_weight, num_classes, xp)})
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    entries = None   # optax's where of the logits' rank: a mask of single entries
    if where is not None and xp.ndim(where) == logits.ndim:
        entries = _checks.entry_mask(where, logits.shape, xp)
        where = None
    mask = _checks.row_mask(where, batch_shape, xp)
    weighting = None if reduction is None else Weighting(weights, batch_shape, reduction, xp)
    n_threads = _checks.check_n_threads(n_threads)
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad,
        result_shape=batch_shape if weighting is None else weighting.result_shape,
        grad_shape=logits.shape, dtype=logits.dtype, inputs={"logits": logits, "labels": labels},
        in_place_of="logits", xp=xp)
    if weighting is not None and weighting.zero:
        grad = _zero_grad(xp, grad_out, logits.shape, logits.dtype) if return_grad else None
        loss, labels_grad = xp.zeros(batch_shape), None
    else:
        loss, grad, labels_grad = _rows.fused(
            backend, logits, labels, axis=axis, sparse=False,
            loss_dtype=logits.dtype if weighting is None else _checks.compute_dtype(logits.dtype),
            out=out if weighting is None else None, want_grad=return_grad, grad_out=grad_out,
            want_labels_grad=return_labels_grad,
            scale=None if weighting is None else weighting.row_scale(), label_coef=label_coef,
            options=kernel_options, mask=entries, n_threads=n_threads)
    if mask is not None:   # only the masked rows are written again
        off = ~mask
        xp.copyto(loss, 0, where=off)
        for g in (grad, labels_grad):
            if g is not None:
                xp.copyto(g, 0, where=xp.expand_dims(off, axis))
    results = [_scalar_if_0d(loss, out) if weighting is None
               else weighting.reduce(loss, logits.dtype, out)]
    if return_grad:
        results.append(grad)
    if return_labels_grad:
        results.append(_sum_to_shape(xp, labels_grad, labels_shape))
    return tuple(results) if len(results) > 1 else results[0]


def _dense_over_axes(labels, logits, axes, *, return_grad, return_labels_grad, grad_out, where,
                     labels_name, **rest):
    """``dense`` over a tuple of class axes (optax's ``axis=(...)``): the classes are those
    axes' entries, in order. The axes are moved last and flattened into one (a copy unless
    they already are last and contiguous), and the gradients are laid back."""
    xp = backend_for(labels=labels, logits=logits).xp
    logits = _checks.logits_array(logits, xp)
    axes = tuple(_checks.normalize_axis(a, logits.ndim) for a in axes)
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(f"axis must be distinct axes of logits, got {axes}")
    _checks._given(labels, labels_name)
    y = xp.asarray(labels)
    labels_shape = y.shape
    try:
        y = xp.broadcast_to(y, logits.shape)
    except ValueError:
        raise ValueError(f"{labels_name} shape {labels_shape} does not broadcast to logits "
                         f"shape {logits.shape}") from None
    order = [k for k in range(logits.ndim) if k not in axes] + list(axes)
    moved = tuple(logits.shape[k] for k in order)
    flat = moved[:logits.ndim - len(axes)] + (math.prod(moved[logits.ndim - len(axes):]),)

    def flatten(a):
        return xp.reshape(xp.transpose(a, order), flat)

    def unflatten(a):
        return xp.transpose(xp.reshape(a, moved), tuple(int(k) for k in np.argsort(order)))

    if where is not None and xp.ndim(where) == logits.ndim:
        where = flatten(_checks.entry_mask(where, logits.shape, xp))
    results = dense(flatten(y), flatten(logits), axis=-1, return_grad=return_grad,
                    return_labels_grad=return_labels_grad, where=where,
                    labels_name=labels_name, **rest)
    if not (return_grad or return_labels_grad):
        return results
    results = list(results)
    if return_grad:
        results[1] = unflatten(results[1])
        if grad_out is not None:
            _checks.output_array(grad_out, "grad_out", logits.shape, logits.dtype,
                                 {"labels": y}, in_place_of="logits", xp=xp)
            xp.copyto(grad_out, results[1])
            results[1] = grad_out
    if return_labels_grad:
        results[-1] = _sum_to_shape(xp, unflatten(results[-1]), labels_shape)
    return tuple(results)


def weighted(losses, weights, reduction, *, return_grad=False, out=None, grad_out=None,
             n_threads=None):
    """``compute_weighted_loss``: weight and reduce given losses (no kernel)."""
    xp = backend_for(losses=losses, weights=weights).xp
    losses = _checks.losses_array(losses, xp)
    _checks.check_n_threads(n_threads)
    weighting = Weighting(weights, losses.shape, reduction, xp)
    dtype = losses.dtype.newbyteorder("=")
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=weighting.result_shape,
        grad_shape=losses.shape, dtype=dtype, inputs={"losses": losses, "weights": weights},
        xp=xp)
    result = weighting.reduce(losses.astype(np.float64, copy=False), dtype, out)
    if not return_grad:
        return result
    if weighting.zero:
        return result, _zero_grad(xp, grad_out, losses.shape, dtype)
    scale = weighting.broadcast / weighting.denominator
    if grad_out is None:
        return result, scale.astype(dtype)
    grad_out[...] = scale
    return result, grad_out
