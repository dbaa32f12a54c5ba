"""The one path from the public functions to the kernels: plan, then run.

Every public function is an adapter over ``sparse``, ``dense`` or ``weighted`` here. Each
first makes a plan (``plan_sparse``, ``plan_dense``): the arguments checked once, before
any output is written (``fastxent._checks``), and laid out: the class axis, the labels
(rows masked by ``where`` become ignored rows), PyTorch's options as kernel coefficients,
the checked weights and the reduction (``fastxent._reduce``). The plan then runs on the
arrays' kind: eagerly on their backend (NumPy, CuPy: one backend call over the batch laid
out as rows, ``fastxent._rows``, which writes the loss and the already-scaled gradient in
one pass), or lazily on Dask (``fastxent._dask``), block by block, each block the same
eager step (``fastxent._rows.run_sparse_rows``, ``run_dense_rows``) on its chunk's
backend.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _checks, _rows
from ._backend import backend_for, default_backend, is_lazy
from ._options import SparseOptions, class_weight_array
from ._reduce import REDUCTION_CODES, Reduction, Weighting, weights_array

__all__ = ["REDUCTION_CODES", "Reduction", "Weighting", "dense", "fast_sparse", "plan_dense",
           "plan_sparse", "sparse", "weighted"]


def fast_sparse(logits, labels, want_grad, reduction, weights, out, grad_out, n_threads):
    """The default backend's whole-call kernel for the calls most users make
    (``fastxent._kernels.fast_sparse``): None where ``sparse`` must run instead. Bound on
    first use, so that importing fastxent loads no kernels."""
    global fast_sparse
    fast_sparse = default_backend().fast_sparse
    return fast_sparse(logits, labels, want_grad, reduction, weights, out, grad_out, n_threads)


def _lazy_namespace():
    """``dask.array``, the namespace of a lazy call (Dask is an optional dependency)."""
    import dask.array as da

    return da


def _namespace(**arrays):
    """The array namespace of a call: ``dask.array`` if any argument is a Dask array, else
    its backend's (``backend_for``)."""
    if all(type(array) is np.ndarray or array is None for array in arrays.values()):
        return np, default_backend()   # the common call, decided at once
    _checks.refuse_unsupported(**arrays)
    if is_lazy(*arrays.values()):
        for name, array in arrays.items():
            _checks.known_shape(array, name)
        return _lazy_namespace(), None
    backend = backend_for(**arrays)
    return backend.xp, backend


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


@dataclass
class SparsePlan:
    """A checked call with integer labels: what every executor runs."""

    logits: Any          # checked float logits, the caller's layout
    labels: Any          # integers of the batch's shape; a row masked by where is ignored
    axis: int            # the class axis of logits, >= 0
    options: Any         # SparseOptions, or None without options
    reduction: Any       # a Reduction, or None for nn's per-row loss
    weights: Any         # checked float64 weights (with a reduction)
    validate: Any
    n_threads: Any

    @property
    def num_classes(self):
        return self.logits.shape[self.axis]

    @property
    def ignore_index(self):
        return None if self.options is None else self.options.ignore_index

    def kernel_options(self, xp):
        """The keyword options of a backend's ``sparse_rows``, on the namespace ``xp``."""
        return {} if self.options is None else self.options.on(xp).kernel_options()

    def weighting(self, label_rows, xp):
        """The reduction's ``Weighting`` over the checked labels (the batch's shape), or None."""
        if self.reduction is None:
            return None
        options = None if self.options is None else self.options.on(xp)
        return Weighting(
            self.weights, self.labels.shape, self.reduction, xp,
            mass=None if options is None else options.row_mass(label_rows),
            keep=None if options is None or options.ignore_index is None
            else options.keep(label_rows))


def plan_sparse(labels, logits, xp, *, axis=-1, weights=None, reduction=None, validate=None,
                ignore_index=None, class_weight=None, label_smoothing=0.0, where=None,
                squeeze=False, n_threads=None, options_xp=None):
    """Check a call with integer labels and lay it out (``SparsePlan``). ``squeeze`` drops a
    trailing 1 from ``labels`` and ``weights`` (TensorFlow's squeezable dimension);
    ``where`` masks rows; ``options_xp``: the namespace of the class weights (NumPy for a
    lazy call: each block moves them to its chunk's)."""
    logits = _checks.logits_array(logits, xp)
    axis = _checks.normalize_axis(axis, logits.ndim)
    if squeeze:
        labels = squeeze_last(xp, labels, logits.ndim)
        weights = squeeze_last(xp, weights, logits.ndim)
    labels = _checks.sparse_labels_array(labels, logits.shape, xp, axis=axis)
    _checks.at_least_one_class(logits.shape, axis)
    num_classes = logits.shape[axis]
    if where is not None and np.ndim(where) == logits.ndim:
        raise NotImplementedError(
            "where= of single logits is available for label distributions "
            "(softmax_cross_entropy_with_logits); for integer labels pass a mask of rows")
    mask = _checks.row_mask(where, labels.shape, xp)
    if mask is not None:
        ignore_index = _MASKED if ignore_index is None else ignore_index
    options = (SparseOptions(ignore_index, class_weight, label_smoothing, num_classes,
                             options_xp or xp)
               if SparseOptions.given(ignore_index, class_weight, label_smoothing) else None)
    n_threads = _checks.check_n_threads(n_threads)
    if mask is not None:
        labels = xp.where(mask, labels, options.ignore_index)
    if reduction is not None:
        reduction = Reduction.validate(reduction)
        weights = weights_array(weights, labels.shape, xp)
    return SparsePlan(logits, labels, axis, options, reduction, weights, validate, n_threads)


def sparse(labels, logits, *, weights=None, reduction=None, return_grad=False, out=None,
           grad_out=None, **call):
    """Softmax cross-entropy of integer labels along the class ``axis``, per row
    (``reduction=None``: ``nn``'s function) or weighted and reduced (``losses``'). The
    keywords of ``plan_sparse``. Returns the loss, and the gradient with ``return_grad``."""
    arrays = dict(labels=labels, logits=logits, where=call.get("where"))
    if reduction is not None:
        arrays["weights"] = weights
    xp, backend = _namespace(**arrays)
    if backend is None:
        from . import _dask

        _dask.no_outputs(out, grad_out)
        return _dask.sparse(plan_sparse(labels, logits, xp, weights=weights, reduction=reduction,
                                        options_xp=np, **call), return_grad)
    plan = plan_sparse(labels, logits, xp, weights=weights, reduction=reduction, **call)
    logits = plan.logits
    label_rows = _checks.sparse_label_rows(plan.labels, plan.num_classes, backend, plan.validate,
                                           ignore_index=plan.ignore_index)
    weighting = plan.weighting(label_rows.reshape(plan.labels.shape), xp)
    result_shape = plan.labels.shape if weighting is None else weighting.result_shape
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=result_shape,
        grad_shape=logits.shape, dtype=logits.dtype,
        inputs={"logits": logits, "labels": plan.labels}, in_place_of="logits", xp=xp)
    if weighting is None:
        loss, grad = _rows.run_sparse_rows(plan, backend, logits, plan.labels,
                                           label_rows=label_rows, want_grad=return_grad,
                                           out=out, grad_out=grad_out)
        loss = _scalar_if_0d(loss, out)
        return (loss, grad) if return_grad else loss
    if weighting.zero:
        grad = _zero_grad(xp, grad_out, logits.shape, logits.dtype) if return_grad else None
        losses = xp.zeros(plan.labels.shape)
    else:
        losses, grad = _rows.run_sparse_rows(plan, backend, logits, plan.labels,
                                             label_rows=label_rows, want_grad=return_grad,
                                             grad_out=grad_out, scale=weighting.row_scale())
    loss = weighting.reduce(losses, logits.dtype, out)
    return (loss, grad) if return_grad else loss


@dataclass
class DensePlan:
    """A checked call with label distributions: what every executor runs."""

    logits: Any          # checked float logits, the caller's layout
    labels: Any          # a view broadcast to the logits' shape, of a dtype the kernels read
    labels_shape: Any    # the labels' own shape (their gradient is summed back to it)
    axis: int            # the class axis, >= 0
    label_coef: Any      # (a, b): the labels used are a * labels + b (label smoothing)
    class_weight: Any    # float64 per class, or None
    entries: Any         # where of the logits' rank (single logits kept), or None
    rows: Any            # where of the batch's shape (rows kept), or None
    reduction: Any
    weights: Any
    n_threads: Any

    @property
    def batch_shape(self):
        shape = self.logits.shape
        return shape[:self.axis] + shape[self.axis + 1:]

    def kernel_options(self, xp):
        """The keyword options of a backend's ``dense_rows``, on the namespace ``xp``."""
        return {} if self.class_weight is None else {"class_weight": xp.asarray(self.class_weight)}

    def weighting(self, xp):
        return None if self.reduction is None else Weighting(self.weights, self.batch_shape,
                                                             self.reduction, xp)


def plan_dense(labels, logits, xp, *, axis=-1, weights=None, reduction=None,
               label_smoothing=0.0, class_weight=None, where=None, labels_name="labels",
               same_shape=False, n_threads=None, options_xp=None):
    """Check a call with label distributions and lay it out (``DensePlan``). ``same_shape``:
    the labels must have the logits' shape exactly (the losses), else they broadcast to it
    (``nn``); ``where`` masks rows, or single logits when it has the logits' rank (optax);
    ``class_weight`` multiplies the labels class by class (PyTorch's ``weight`` for
    probability targets)."""
    logits = _checks.logits_array(logits, xp)
    axis = _checks.normalize_axis(axis, logits.ndim)
    _checks.at_least_one_class(logits.shape, axis)
    if same_shape:
        _checks._given(labels, labels_name)
        labels = xp.asarray(labels)
        if labels.shape != logits.shape:
            raise ValueError(f"{labels_name} shape {labels.shape} must equal "
                             f"logits shape {logits.shape}")
    labels, labels_shape = _checks.dense_labels_array(labels, logits.shape, logits.dtype, xp,
                                                      name=labels_name)
    eps = _checks.label_smoothing_value(label_smoothing)
    num_classes = logits.shape[axis]
    if class_weight is not None:
        class_weight = class_weight_array(class_weight, num_classes, options_xp or xp)
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    entries = None
    if where is not None and np.ndim(where) == logits.ndim:
        entries = _checks.entry_mask(where, logits.shape, xp)
        where = None
    rows = _checks.row_mask(where, batch_shape, xp)
    if reduction is not None:
        reduction = Reduction.validate(reduction)
        weights = weights_array(weights, batch_shape, xp)
    return DensePlan(logits, labels, labels_shape, axis, (1.0 - eps, eps / num_classes),
                     class_weight, entries, rows, reduction, weights,
                     _checks.check_n_threads(n_threads))


def dense(labels, logits, *, axis=-1, weights=None, reduction=None, return_grad=False,
          return_labels_grad=False, out=None, grad_out=None, **call):
    """Softmax cross-entropy of label distributions along ``axis`` (an axis, or optax's
    tuple of axes), per row (``reduction=None``) or weighted and reduced. The keywords of
    ``plan_dense``. Returns the loss, then the gradients asked for."""
    arrays = {call.get("labels_name", "labels"): labels, "logits": logits,
              "where": call.get("where")}
    if reduction is not None:
        arrays["weights"] = weights
    xp, backend = _namespace(**arrays)
    wanted = dict(return_grad=return_grad, return_labels_grad=return_labels_grad)
    if backend is None:
        from . import _dask

        _dask.no_outputs(out, grad_out)
    if isinstance(axis, tuple):
        return _dense_over_axes(labels, logits, axis, xp, weights=weights, reduction=reduction,
                                out=out, grad_out=grad_out, **wanted, **call)
    if backend is None:
        return _dask.dense(plan_dense(labels, logits, xp, axis=axis, weights=weights,
                                      reduction=reduction, options_xp=np, **call), **wanted)
    plan = plan_dense(labels, logits, xp, axis=axis, weights=weights, reduction=reduction,
                      **call)
    logits = plan.logits
    weighting = plan.weighting(xp)
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad,
        result_shape=plan.batch_shape if weighting is None else weighting.result_shape,
        grad_shape=logits.shape, dtype=logits.dtype,
        inputs={"logits": logits, "labels": plan.labels}, in_place_of="logits", xp=xp)
    if weighting is not None and weighting.zero:
        grad = _zero_grad(xp, grad_out, logits.shape, logits.dtype) if return_grad else None
        loss, labels_grad = xp.zeros(plan.batch_shape), None
    else:
        loss, grad, labels_grad = _rows.run_dense_rows(
            plan, backend, logits, plan.labels, want_grad=return_grad,
            want_labels_grad=return_labels_grad, entries=plan.entries, rows=plan.rows,
            out=out if weighting is None else None, grad_out=grad_out,
            scale=None if weighting is None else weighting.row_scale())
    results = [_scalar_if_0d(loss, out) if weighting is None
               else weighting.reduce(loss, logits.dtype, out)]
    if return_grad:
        results.append(grad)
    if return_labels_grad:
        results.append(_rows.sum_to_shape(xp, labels_grad, plan.labels_shape))
    return tuple(results) if len(results) > 1 else results[0]


def _dense_over_axes(labels, logits, axes, xp, *, return_grad, return_labels_grad, grad_out,
                     where=None, labels_name="labels", **rest):
    """``dense`` over a tuple of class axes (optax's ``axis=(...)``): the classes are those
    axes' entries, in order. The axes are moved last and flattened into one (a copy unless
    they already are last and contiguous), and the gradients are laid back."""
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
    kept = logits.ndim - len(axes)
    flat = moved[:kept] + (int(np.prod(moved[kept:])),)

    def flatten(a):
        return xp.reshape(xp.transpose(a, order), flat)

    def unflatten(a):
        return xp.transpose(xp.reshape(a, moved), tuple(int(k) for k in np.argsort(order)))

    if where is not None and np.ndim(where) == logits.ndim:
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
        results[-1] = _rows.sum_to_shape(xp, unflatten(results[-1]), labels_shape)
    return tuple(results)


def weighted(losses, weights, reduction, *, return_grad=False, out=None, grad_out=None,
             n_threads=None):
    """``compute_weighted_loss``: weight and reduce given losses (no kernel), eagerly or on
    Dask arrays lazily."""
    xp, backend = _namespace(losses=losses, weights=weights)
    if backend is None:
        from . import _dask

        _dask.no_outputs(out, grad_out)
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
    if grad_out is None:
        return result, weighting.factor().astype(dtype)
    grad_out[...] = weighting.factor()
    return result, grad_out
