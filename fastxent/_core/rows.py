"""A plan's eager step: the batch as rows, and one backend call.

Moves the class axis last, flattens the batch to N rows, gives the backend (N, C) views of
the inputs and of the caller's ``out``/``grad_out`` where such views exist, calls the
backend once, and copies a result back only where no view was possible. Written against
the backend's array namespace ``xp`` (NumPy or CuPy); the whole call's step
(``fastxent._core.plan``) and one Dask block's (``fastxent._dask.loss``).
"""

import math

import numpy as np

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


def _as_rows(xp, array, axis, rows_shape):
    """An input as (N, C) rows: a view, or a copy."""
    moved = array if axis == array.ndim - 1 else xp.moveaxis(array, axis, -1)
    view = _reshape_view(xp, moved, rows_shape)
    return xp.reshape(moved, rows_shape) if view is None else view


def _result(xp, given, shape, dtype, axis, rows_shape):
    """Where the backend writes one result: (the caller's array, its rows, and the array to
    copy the rows into afterwards, or None where the rows are a view of it)."""
    if given is None:
        array = xp.empty(shape, dtype)
        rows = array.reshape(rows_shape)
        if axis != len(shape) - 1:
            array = xp.moveaxis(array, -1, axis)
        return array, rows, None
    moved = given if axis == given.ndim - 1 else xp.moveaxis(given, axis, -1)
    view = _reshape_view(xp, moved, rows_shape)
    if view is not None:
        return given, view, None
    return given, xp.empty(rows_shape, given.dtype), moved


def _layout(xp, logits, axis, out, grad_out, loss_dtype, want_grad, want_labels_grad):
    """The rows of ``logits`` and the results: (x rows, [(array, rows, copy_to) of the
    loss, the gradient, the labels' gradient (None where not wanted)])."""
    shape = logits.shape
    num_classes = shape[axis]
    batch_shape = shape[:axis] + shape[axis + 1:]
    rows_shape = (math.prod(batch_shape), num_classes)
    moved_shape = batch_shape + (num_classes,)
    results = [_result(xp, out, batch_shape, loss_dtype, len(batch_shape) - 1, (rows_shape[0],))]
    for wanted, given in ((want_grad, grad_out), (want_labels_grad, None)):
        results.append(_result(xp, given, moved_shape, logits.dtype, axis, rows_shape)
                       if wanted else None)
    return _as_rows(xp, logits, axis, rows_shape), rows_shape, results


def sparse_rows(backend, logits, label_rows, *, axis, loss_dtype, kernel_options, n_threads,
                want_grad, out=None, grad_out=None, scale=None):
    """Loss of every row (and the gradient, scaled by ``scale`` per row) in one backend call.

    ``label_rows``: the labels as checked, contiguous int64 rows; ``kernel_options``: the
    keywords of the backend's ``sparse_rows`` (PyTorch's options); ``out``, ``grad_out``:
    checked caller arrays. Returns the loss and the gradient (None unless wanted) in the
    caller's shapes.
    """
    xp = backend.xp
    x_rows, _, results = _layout(xp, logits, axis, out, grad_out, loss_dtype, want_grad, False)
    loss, grad, _ = results
    backend.sparse_rows(x_rows, label_rows, loss[1], grad and grad[1],
                        _ONE if scale is None and xp is np else scale, n_threads,
                        **kernel_options)
    for result in (loss, grad):
        if result is not None and result[2] is not None:
            xp.copyto(result[2], result[1].reshape(result[2].shape))
    return loss[0], grad and grad[0]


def dense_rows(backend, logits, labels, *, axis, loss_dtype, label_coef, kernel_options,
               n_threads, want_grad, want_labels_grad, entries=None, rows=None, out=None,
               grad_out=None, scale=None):
    """Loss of every row and the gradients asked for (scaled by ``scale`` per row), of label
    distributions ``labels`` (broadcast to the logits' shape) in one backend call.

    ``label_coef``: ``(a, b)``, the labels used are ``a * labels + b``; ``entries``: a mask
    of single logits (their shape), ``rows``: a mask of rows (the batch's shape); a masked
    row's loss and gradients are 0. Returns the loss and the two gradients (None unless
    wanted) in the caller's shapes.
    """
    xp = backend.xp
    x_rows, rows_shape, results = _layout(xp, logits, axis, out, grad_out, loss_dtype,
                                          want_grad, want_labels_grad)
    loss, grad, labels_grad = results
    if entries is not None:
        kernel_options = dict(kernel_options, mask=_as_rows(xp, entries, axis, rows_shape))
    a, b = label_coef
    backend.dense_rows(x_rows, _as_rows(xp, labels, axis, rows_shape), loss[1],
                       grad and grad[1], labels_grad and labels_grad[1], a, b,
                       _ONE if scale is None and xp is np else scale, n_threads,
                       **kernel_options)
    for result in results:
        if result is not None and result[2] is not None:
            xp.copyto(result[2], result[1].reshape(result[2].shape))
    if rows is not None:   # only the masked rows are written again
        xp.copyto(loss[0], 0, where=~rows)
        for result in (grad, labels_grad):
            if result is not None:
                xp.copyto(result[0], 0, where=xp.expand_dims(~rows, axis))
    return loss[0], grad and grad[0], labels_grad and labels_grad[0]


def sum_to_shape(xp, full, shape):
    """Sum ``full`` over the axes along which an array of ``shape`` was broadcast to it."""
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and full.shape[lead + k] != 1)
    if not axes:
        return full
    return xp.sum(full, axis=axes, dtype=np.float64).reshape(shape).astype(full.dtype)
