"""The one path from the public functions to the kernels: plan, then run.

Every public function is an adapter over ``sparse``, ``dense`` or ``weighted`` here. Each
makes a plan (``plan_sparse``, ``plan_dense``) in one trip down: the arguments checked,
before any output is written (``checks``), PyTorch's options as kernel coefficients
(``options``), the weights and the reduction (``reduce``). The plan then runs on the
arrays' kind: eagerly on their backend (NumPy, CuPy: one backend call over the batch laid
out as rows, ``rows``, which writes the loss and the already-scaled gradient in one pass),
or lazily on Dask (``fastxent._dask.loss``), block by block, each block the same eager
step on its chunk's backend.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backends
from . import checks, rows
from .checks import Reduction
from .options import SparseOptions
from .reduce import Weighting

__all__ = ["dense", "fast_sparse", "sparse", "weighted"]


def fast_sparse(logits, labels, want_grad, reduction, weights, out, grad_out, n_threads):
    """The default backend's whole-call kernel for the calls most users make
    (``_backends._kernels.fast_sparse``): None where ``sparse`` must run instead. Bound on
    first use, so that importing fastxent loads no kernels."""
    global fast_sparse
    fast_sparse = _backends.default_backend().fast_sparse
    return fast_sparse(logits, labels, want_grad, reduction, weights, out, grad_out, n_threads)


_CPU = None   # the default backend, once loaded


def _namespace(**arrays):
    """The array namespace and backend of a call: (``dask.array``, None) if any argument is
    a Dask array, else its backend's (``_backends.backend_for``)."""
    global _CPU
    if all(type(array) is np.ndarray or array is None for array in arrays.values()):
        _CPU = _CPU or _backends.default_backend()
        return np, _CPU                      # the common call, decided at once
    checks.refuse_unsupported(**arrays)
    if _backends.is_lazy(*arrays.values()):
        for name, array in arrays.items():
            checks.known_shape(array, name)
        import dask.array as da

        return da, None
    backend = _backends.backend_for(**arrays)
    return backend.xp, backend


_MASKED = int(np.iinfo(np.int64).min)   # the label of a row masked by ``where``


@dataclass
class SparsePlan:
    """A checked call with integer labels: what every executor runs."""

    logits: Any          # checked float logits, the caller's layout
    labels: Any          # integers of the batch's shape; a row masked by where is ignored
    label_rows: Any      # the labels as checked int64 rows (None on Dask: each block's own)
    axis: int            # the class axis of logits, >= 0
    options: Any         # SparseOptions (on NumPy for a lazy call), or None
    kernel_options: Any  # the keywords of a backend's sparse_rows
    loss_dtype: Any      # of the per-row losses: the logits' (nn), the compute dtype (reduced)
    reduction: Any       # a validated reduction, or None for nn's per-row loss
    weights: Any         # checked float64 weights (with a reduction)
    weighting: Any       # the eager call's Weighting, or None
    scale: Any           # the eager call's per-row gradient factor, or None
    validate: Any
    n_threads: Any
    out: Any
    grad_out: Any


def plan_sparse(labels, logits, xp, backend, *, axis=-1, weights=None, reduction=None,
                validate=None, ignore_index=None, class_weight=None, label_smoothing=0.0,
                where=None, squeeze=False, n_threads=None, return_grad=False, out=None,
                grad_out=None):
    """Check a call with integer labels and lay it out (``SparsePlan``). ``backend`` None:
    a lazy call on the namespace ``xp`` (Dask); ``squeeze`` drops a trailing 1 from
    ``labels`` and ``weights`` (TensorFlow's squeezable dimension); ``where`` masks rows."""
    logits = checks.logits_array(logits, xp)
    axis = checks.normalize_axis(axis, logits.ndim)
    if squeeze:
        labels = checks.squeeze_last(xp, labels, logits.ndim)
        weights = checks.squeeze_last(xp, weights, logits.ndim)
    labels = checks.sparse_labels_array(labels, logits.shape, xp, axis=axis)
    checks.at_least_one_class(logits.shape, axis)
    num_classes = logits.shape[axis]
    if where is not None and np.ndim(where) == logits.ndim:
        raise NotImplementedError(
            "where= of single logits is available for label distributions "
            "(softmax_cross_entropy_with_logits); for integer labels pass a mask of rows")
    mask = checks.row_mask(where, labels.shape, xp)
    ignore_index = checks.ignore_index_value(
        _MASKED if mask is not None and ignore_index is None else ignore_index)
    class_weight = checks.class_weight_array(class_weight, num_classes,
                                             np if backend is None else xp)
    eps = checks.label_smoothing_value(label_smoothing)
    n_threads = checks.check_n_threads(n_threads)
    loss_dtype = logits.dtype
    if reduction is not None:
        reduction = Reduction.validate(reduction)
        weights = checks.weights_array(weights, labels.shape, xp)
        loss_dtype = checks.compute_dtype(logits.dtype)
    if mask is not None:
        labels = xp.where(mask, labels, ignore_index)
    label_rows = None
    if backend is None:
        checks.no_outputs(out, grad_out)
    else:
        out, grad_out = checks.output_arrays(
            out, grad_out, return_grad=return_grad,
            result_shape=labels.shape if reduction in (None, Reduction.NONE) else (),
            grad_shape=logits.shape, dtype=logits.dtype,
            inputs={"logits": logits, "labels": labels}, in_place_of="logits", xp=xp)
        label_rows = checks.sparse_label_rows(labels, num_classes, backend, validate,
                                              ignore_index=ignore_index)
    options, kernel_options = None, {}
    if ignore_index is not None or class_weight is not None or eps:
        options = SparseOptions(ignore_index, class_weight, eps, num_classes,
                                np if backend is None else xp)
        kernel_options = options.kernel_options()
    weighting = scale = None
    if reduction is not None and backend is not None:
        mass = keep = None
        if options is not None:
            mass = options.row_mass(label_rows).reshape(labels.shape)
            keep = options.keep(label_rows)
            keep = None if keep is None else keep.reshape(labels.shape)
        weighting = Weighting(weights, labels.shape, reduction, xp, mass=mass, keep=keep)
        scale = weighting.row_scale()
    return SparsePlan(logits, labels, label_rows, axis, options, kernel_options, loss_dtype,
                      reduction, weights, weighting, scale, validate, n_threads, out, grad_out)


def sparse(labels, logits, *, weights=None, reduction=None, return_grad=False, **call):
    """Softmax cross-entropy of integer labels along the class ``axis``, per row
    (``reduction=None``: ``nn``'s function) or weighted and reduced (``losses``'). The
    keywords of ``plan_sparse``. Returns the loss, and the gradient with ``return_grad``."""
    arrays = dict(labels=labels, logits=logits, where=call.get("where"))
    if reduction is not None:
        arrays["weights"] = weights
    xp, backend = _namespace(**arrays)
    plan = plan_sparse(labels, logits, xp, backend, weights=weights, reduction=reduction,
                       return_grad=return_grad, **call)
    if backend is None:
        from .._dask import loss

        return loss.sparse(plan, return_grad)
    logits, weighting = plan.logits, plan.weighting
    if weighting is not None and weighting.zero:
        grad = _zeros(xp, plan.grad_out, logits) if return_grad else None
        loss = weighting.reduce(xp.zeros(plan.labels.shape), logits.dtype, plan.out)
        return (loss, grad) if return_grad else loss
    loss, grad = rows.sparse_rows(
        backend, logits, plan.label_rows, axis=plan.axis, loss_dtype=plan.loss_dtype,
        kernel_options=plan.kernel_options, n_threads=plan.n_threads, want_grad=return_grad,
        out=plan.out if weighting is None else None, grad_out=plan.grad_out, scale=plan.scale)
    if weighting is not None:
        loss = weighting.reduce(loss, logits.dtype, plan.out)
    elif plan.out is None and loss.ndim == 0:
        loss = loss[()]
    return (loss, grad) if return_grad else loss


def _zeros(xp, grad_out, logits):
    """The gradient of a reduction whose denominator is 0."""
    if grad_out is None:
        return xp.zeros(logits.shape, logits.dtype)
    grad_out[...] = 0
    return grad_out


@dataclass
class DensePlan:
    """A checked call with label distributions: what every executor runs."""

    logits: Any          # checked float logits, the caller's layout
    labels: Any          # a view broadcast to the logits' shape, of a dtype the kernels read
    labels_shape: Any    # the labels' own shape (their gradient is summed back to it)
    axis: int            # the class axis, >= 0
    label_coef: Any      # (a, b): the labels used are a * labels + b (label smoothing)
    class_weight: Any    # float64 per class (on NumPy for a lazy call), or None
    kernel_options: Any  # the keywords of a backend's dense_rows
    loss_dtype: Any      # of the per-row losses: the logits' (nn), the compute dtype (reduced)
    entries: Any         # where of the logits' rank (single logits kept), or None
    rows: Any            # where of the batch's shape (rows kept), or None
    reduction: Any
    weights: Any
    weighting: Any       # the eager call's Weighting, or None
    scale: Any           # the eager call's per-row gradient factor, or None
    n_threads: Any
    out: Any
    grad_out: Any


def plan_dense(labels, logits, xp, backend, *, axis=-1, weights=None, reduction=None,
               label_smoothing=0.0, class_weight=None, where=None, labels_name="labels",
               same_shape=False, n_threads=None, return_grad=False, out=None, grad_out=None):
    """Check a call with label distributions and lay it out (``DensePlan``). ``same_shape``:
    the labels must have the logits' shape exactly (the losses), else they broadcast to it
    (``nn``); ``where`` masks rows, or single logits when it has the logits' rank (optax);
    ``class_weight`` multiplies the labels class by class (PyTorch's ``weight`` for
    probability targets)."""
    logits = checks.logits_array(logits, xp)
    axis = checks.normalize_axis(axis, logits.ndim)
    checks.at_least_one_class(logits.shape, axis)
    if same_shape:
        checks.given(labels, labels_name)
        if xp.asarray(labels).shape != logits.shape:
            raise ValueError(f"{labels_name} shape {xp.asarray(labels).shape} must equal "
                             f"logits shape {logits.shape}")
    labels, labels_shape = checks.dense_labels_array(labels, logits.shape, logits.dtype, xp,
                                                     name=labels_name)
    eps = checks.label_smoothing_value(label_smoothing)
    num_classes = logits.shape[axis]
    class_weight = checks.class_weight_array(class_weight, num_classes,
                                             np if backend is None else xp)
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    entries = None
    if where is not None and np.ndim(where) == logits.ndim:
        entries, where = checks.entry_mask(where, logits.shape, xp), None
    mask = checks.row_mask(where, batch_shape, xp)
    n_threads = checks.check_n_threads(n_threads)
    loss_dtype = logits.dtype
    if reduction is not None:
        reduction = Reduction.validate(reduction)
        weights = checks.weights_array(weights, batch_shape, xp)
        loss_dtype = checks.compute_dtype(logits.dtype)
    if backend is None:
        checks.no_outputs(out, grad_out)
    else:
        out, grad_out = checks.output_arrays(
            out, grad_out, return_grad=return_grad,
            result_shape=batch_shape if reduction in (None, Reduction.NONE) else (),
            grad_shape=logits.shape, dtype=logits.dtype,
            inputs={"logits": logits, "labels": labels}, in_place_of="logits", xp=xp)
    weighting = scale = None
    if reduction is not None and backend is not None:
        weighting = Weighting(weights, batch_shape, reduction, xp)
        scale = weighting.row_scale()
    return DensePlan(logits, labels, labels_shape, axis, (1.0 - eps, eps / num_classes),
                     class_weight, {} if class_weight is None else {"class_weight": class_weight},
                     loss_dtype, entries, mask, reduction, weights, weighting, scale,
                     n_threads, out, grad_out)


def dense(labels, logits, *, axis=-1, weights=None, reduction=None, return_grad=False,
          return_labels_grad=False, **call):
    """Softmax cross-entropy of label distributions along ``axis`` (an axis, or optax's
    tuple of axes), per row (``reduction=None``) or weighted and reduced. The keywords of
    ``plan_dense``. Returns the loss, then the gradients asked for."""
    arrays = {call.get("labels_name", "labels"): labels, "logits": logits,
              "where": call.get("where")}
    if reduction is not None:
        arrays["weights"] = weights
    xp, backend = _namespace(**arrays)
    wanted = dict(return_grad=return_grad, return_labels_grad=return_labels_grad)
    if isinstance(axis, tuple):
        return _dense_over_axes(labels, logits, axis, xp, backend, weights=weights,
                                reduction=reduction, **wanted, **call)
    plan = plan_dense(labels, logits, xp, backend, axis=axis, weights=weights,
                      reduction=reduction, return_grad=return_grad, **call)
    if backend is None:
        from .._dask import loss

        return loss.dense(plan, **wanted)
    logits, weighting = plan.logits, plan.weighting
    if weighting is not None and weighting.zero:
        grad = _zeros(xp, plan.grad_out, logits) if return_grad else None
        loss = xp.zeros(logits.shape[:plan.axis] + logits.shape[plan.axis + 1:])
        labels_grad = None
    else:
        loss, grad, labels_grad = rows.dense_rows(
            backend, logits, plan.labels, axis=plan.axis, loss_dtype=plan.loss_dtype,
            label_coef=plan.label_coef, kernel_options=plan.kernel_options,
            n_threads=plan.n_threads, want_grad=return_grad,
            want_labels_grad=return_labels_grad, entries=plan.entries, rows=plan.rows,
            out=plan.out if weighting is None else None, grad_out=plan.grad_out,
            scale=plan.scale)
    if weighting is not None:
        loss = weighting.reduce(loss, logits.dtype, plan.out)
    elif plan.out is None and loss.ndim == 0:
        loss = loss[()]
    results = [loss] + ([grad] if return_grad else [])
    if return_labels_grad:
        results.append(rows.sum_to_shape(xp, labels_grad, plan.labels_shape))
    return tuple(results) if len(results) > 1 else results[0]


def _dense_over_axes(labels, logits, axes, xp, backend, *, return_grad, return_labels_grad,
                     grad_out=None, out=None, where=None, labels_name="labels", **rest):
    """``dense`` over a tuple of class axes (optax's ``axis=(...)``): the classes are those
    axes' entries, in order. The axes are moved last and flattened into one (a copy unless
    they already are last and contiguous), and the gradients are laid back."""
    logits = checks.logits_array(logits, xp)
    axes = tuple(checks.normalize_axis(a, logits.ndim) for a in axes)
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(f"axis must be distinct axes of logits, got {axes}")
    checks.given(labels, labels_name)
    y = xp.asarray(labels)
    labels_shape = y.shape
    try:
        y = xp.broadcast_to(y, logits.shape)
    except ValueError:
        raise ValueError(f"{labels_name} shape {labels_shape} does not broadcast to logits "
                         f"shape {logits.shape}") from None
    if backend is None:
        checks.no_outputs(out, grad_out)
    elif grad_out is not None:
        checks.output_array(grad_out, "grad_out", logits.shape, logits.dtype, {"labels": y},
                            in_place_of="logits", xp=xp)
    order = [k for k in range(logits.ndim) if k not in axes] + list(axes)
    moved = tuple(logits.shape[k] for k in order)
    kept = logits.ndim - len(axes)
    flat = moved[:kept] + (int(np.prod(moved[kept:])),)

    def flatten(a):
        return xp.reshape(xp.transpose(a, order), flat)

    def unflatten(a):
        return xp.transpose(xp.reshape(a, moved), tuple(int(k) for k in np.argsort(order)))

    if where is not None and np.ndim(where) == logits.ndim:
        where = flatten(checks.entry_mask(where, logits.shape, xp))
    results = dense(flatten(y), flatten(logits), axis=-1, return_grad=return_grad,
                    return_labels_grad=return_labels_grad, where=where,
                    labels_name=labels_name, out=out, **rest)
    if not (return_grad or return_labels_grad):
        return results
    results = list(results)
    if return_grad:
        results[1] = unflatten(results[1])
        if grad_out is not None:
            xp.copyto(grad_out, results[1])
            results[1] = grad_out
    if return_labels_grad:
        results[-1] = rows.sum_to_shape(xp, unflatten(results[-1]), labels_shape)
    return tuple(results)


def weighted(losses, weights, reduction, *, return_grad=False, out=None, grad_out=None,
             n_threads=None):
    """``compute_weighted_loss``: weight and reduce given losses (no kernel), eagerly or on
    Dask arrays lazily."""
    xp, backend = _namespace(losses=losses, weights=weights)
    losses = checks.losses_array(losses, xp)
    checks.check_n_threads(n_threads)
    reduction = Reduction.validate(reduction)
    checked = checks.weights_array(weights, losses.shape, xp)
    dtype = losses.dtype.newbyteorder("=")
    if backend is None:
        checks.no_outputs(out, grad_out)
    else:
        out, grad_out = checks.output_arrays(
            out, grad_out, return_grad=return_grad,
            result_shape=losses.shape if reduction == Reduction.NONE else (),
            grad_shape=losses.shape, dtype=dtype, inputs={"losses": losses, "weights": weights},
            xp=xp)
    weighting = Weighting(checked, losses.shape, reduction, xp)
    result = weighting.reduce(losses.astype(np.float64, copy=False), dtype, out)
    if not return_grad:
        return result
    if grad_out is None:
        return result, weighting.factor().astype(dtype)
    grad_out[...] = weighting.factor()
    return result, grad_out
