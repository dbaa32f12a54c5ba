"""The batch as rows, and the one backend call of each public function.

Moves the class axis last, flattens the batch to N rows, gives the backend
(N, C) views of the inputs and of the caller's ``out``/``grad_out`` where
such views exist, calls the backend once, and copies a result back only where
no view was possible. Written against the backend's array namespace ``xp``
(NumPy or CuPy). ``run_sparse_rows`` and ``run_dense_rows`` are a plan's eager step
(``fastxent._core``): the whole call's, or one Dask block's (``fastxent._dask``).
"""

import math

import numpy as np

from . import _checks


_ONE = np.ones(1)
_ONE.flags.writeable = False


def _reshape_view(xp, array, shape):
    """A view of ``array`` with ``shape``, or None where that needs a copy."""
    if xp is np:
        try:
            return np.reshape(array, shape, copy=False)
        except ValueError:
            return None
    view = array.view()
    try:
        view.shape = shape  # CuPy raises AttributeError where a copy would be needed
    except AttributeError:
        return None
    return view


def _as_rows(xp, array, axis, rows_shape, *, copy_ok):
    moved = array if axis is None or axis == array.ndim - 1 else xp.moveaxis(array, axis, -1)
    view = _reshape_view(xp, moved, rows_shape)
    if view is not None:
        return view, None
    if copy_ok:
        return xp.reshape(moved, rows_shape), None
    return xp.empty(rows_shape, array.dtype), moved


class _Result:
    """Where the backend writes one result, and how it reaches the caller."""

    def __init__(self, xp, given, shape, dtype, axis, rows_shape):
        self._xp = xp
        if given is None:
            self.array = xp.empty(shape, dtype)
            self.rows, self._copy_to = self.array.reshape(rows_shape), None
            if axis is not None and axis != len(shape) - 1:
                self.array = xp.moveaxis(self.array, -1, axis)
        else:
            self.array = given
            self.rows, self._copy_to = _as_rows(xp, given, axis, rows_shape, copy_ok=False)

    def finish(self):
        if self._copy_to is not None:
            self._xp.copyto(self._copy_to, self.rows.reshape(self._copy_to.shape))
        return self.array


def _moved_shape(shape, axis):
    return tuple(d for k, d in enumerate(shape) if k != axis) + (shape[axis],)


def fused(backend, logits, labels, *, axis=-1, sparse, loss_dtype, out=None,
          want_grad=False, grad_out=None, want_labels_grad=False, scale=None,
          label_coef=(1.0, 0.0), options=None, mask=None, n_threads=None):
    """Loss (and gradients) of every row in one backend call.

    Parameters
    ----------
    backend : module
        From ``fastxent._backend.backend_for`` (or ``chunk_backend``).
    logits : ndarray
        Checked float logits.
    labels : ndarray
        Sparse: int64 rows (``logits.shape[:-1]`` flattened), already range-checked.
        Dense: a view broadcast to ``logits.shape``.
    axis : int
        The class axis of ``logits`` (and of dense ``labels``).
    sparse : bool
    loss_dtype : dtype
        Dtype of the per-row loss.
    out, grad_out : ndarray or None
        Checked caller arrays for the loss and the logits gradient.
    want_grad, want_labels_grad : bool
    scale : ndarray or None
        float64 per-row factor of the gradients, shape (N,) or (1,); None is 1 (the
        GPU backend keeps a device copy of 1).
    label_coef : (float, float)
        Dense labels used are ``a * labels + b``.
    options : dict or None
        Keyword options of the backend's kernel: for sparse labels PyTorch's options
        (``fastxent._options.SparseOptions.kernel_options``), for dense ones ``class_weight``.
    mask : ndarray of bool or None
        Dense: entries to keep, the logits' shape (laid out as rows like the labels).
    n_threads : int or None

    Returns
    -------
    loss, grad, labels_grad
        Arrays in the caller's shapes; the gradients are None unless asked for.
    """
    axis = axis % logits.ndim
    shape = logits.shape
    num_classes = shape[axis]
    batch_shape = tuple(d for k, d in enumerate(shape) if k != axis)
    rows = math.prod(batch_shape)
    rows_shape = (rows, num_classes)
    moved_shape = _moved_shape(shape, axis)

    xp = backend.xp
    x_rows, _ = _as_rows(xp, logits, axis, rows_shape, copy_ok=True)
    if sparse:
        y_rows = _checks.int64_rows(labels, xp)
    else:
        y_rows, _ = _as_rows(xp, labels, axis, rows_shape, copy_ok=True)
    if scale is None and xp is np:
        scale = _ONE

    loss = _Result(xp, out, batch_shape, loss_dtype, None, (rows,))
    grad = (_Result(xp, grad_out, moved_shape, logits.dtype, axis, rows_shape)
            if want_grad else None)
    labels_grad = (_Result(xp, None, moved_shape, logits.dtype, axis, rows_shape)
                   if want_labels_grad else None)
    g_rows = grad.rows if grad else None
    if sparse:
        backend.sparse_rows(x_rows, y_rows, loss.rows, g_rows, scale, n_threads, **(options or {}))
    else:
        a, b = label_coef
        gy_rows = labels_grad.rows if labels_grad else None
        options = dict(options or {})
        if mask is not None:
            options["mask"], _ = _as_rows(xp, mask, axis, rows_shape, copy_ok=True)
        backend.dense_rows(x_rows, y_rows, loss.rows, g_rows, gy_rows, a, b, scale, n_threads,
                           **options)
    return (
        loss.finish(),
        grad.finish() if grad else None,
        labels_grad.finish() if labels_grad else None,
    )


def run_sparse_rows(plan, backend, logits, labels, *, want_grad, label_rows=None, out=None,
                    grad_out=None, scale=None, offsets=None):
    """Per-row losses (in the compute dtype with a reduction, else the logits') and the
    gradient scaled by ``scale`` per row, of ``logits`` and ``labels`` laid out as the plan's
    (the whole call's, or a Dask block's, which starts at ``offsets`` of the batch), in one
    backend call. ``label_rows``: the labels already checked, as int64 rows."""
    if label_rows is None:
        label_rows = _checks.sparse_label_rows(labels, logits.shape[plan.axis], backend,
                                               plan.validate, ignore_index=plan.ignore_index,
                                               offsets=offsets)
    dtype = logits.dtype if plan.reduction is None else _checks.compute_dtype(logits.dtype)
    loss, grad, _ = fused(backend, logits, label_rows, axis=plan.axis, sparse=True,
                                loss_dtype=dtype, out=out, want_grad=want_grad,
                                grad_out=grad_out, scale=scale,
                                options=plan.kernel_options(backend.xp),
                                n_threads=plan.n_threads)
    return loss, grad


def run_dense_rows(plan, backend, logits, labels, *, want_grad, want_labels_grad, entries=None,
                   rows=None, out=None, grad_out=None, scale=None):
    """Per-row losses and the gradients asked for (scaled by ``scale`` per row), of
    ``logits`` and ``labels`` laid out as the plan's (the whole call's, or a Dask block's),
    in one backend call; ``entries`` and ``rows``: the plan's masks for these logits. A
    masked row's loss and gradients are 0."""
    xp = backend.xp
    dtype = logits.dtype if plan.reduction is None else _checks.compute_dtype(logits.dtype)
    loss, grad, labels_grad = fused(
        backend, logits, labels, axis=plan.axis, sparse=False, loss_dtype=dtype, out=out,
        want_grad=want_grad, grad_out=grad_out, want_labels_grad=want_labels_grad, scale=scale,
        label_coef=plan.label_coef, options=plan.kernel_options(xp), mask=entries,
        n_threads=plan.n_threads)
    if rows is not None:   # only the masked rows are written again
        off = ~rows
        xp.copyto(loss, 0, where=off)
        for g in (grad, labels_grad):
            if g is not None:
                xp.copyto(g, 0, where=xp.expand_dims(off, plan.axis))
    return loss, grad, labels_grad


def sum_to_shape(xp, full, shape):
    """Sum ``full`` over the axes along which an array of ``shape`` was broadcast to it."""
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and full.shape[lead + k] != 1)
    if not axes:
        return full
    return xp.sum(full, axis=axes, dtype=np.float64).reshape(shape).astype(full.dtype)
