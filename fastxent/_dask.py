"""The Dask backend: every public function on Dask arrays, lazily, through Dask's scheduler.

Class axis in one chunk: each block of rows is computed by the public function
itself on the block's NumPy or CuPy chunk, so the chunk type picks the CPU or
CUDA kernels, and the loss and the gradient come from one kernel call per block.

Class axis split across chunks (a vocabulary too large for one worker): each
block computes its rows' partial normalizers (and, for sparse labels, the
target logit when the target falls in the block); the partials of a row are
combined across its blocks with the log-sum-exp rule (``fastxent._lse``); the
loss follows, and each block writes its slice of the gradient from the combined
normalizer. The class axis is never rechunked. NumPy chunks use the CPU
kernels' partial entry points, CuPy chunks the CUDA ones.

Weights and reductions are Dask reductions; the per-row factor
``w_i / denominator`` goes into the per-block calls.

Imported only when a call gets a Dask array (``fastxent._dispatch``); Dask is an
optional dependency (``pip install fastxent[dask]``).
"""

import numpy as np

from . import _checks, _lse
from ._errors import InvalidArgumentError

lazy = True
_BATCH = "abcdefghijklmnopqrstuvwxy"
_CLASS = "z"


def _da():
    import dask.array as da

    return da


def _as_dask(array, name):
    da = _da()
    _checks._given(array, name)
    return array if isinstance(array, da.Array) else da.asarray(array)


def _no_out(out, grad_out):
    if out is not None or grad_out is not None:
        raise TypeError("out= and grad_out= are not supported for Dask arrays: "
                        "the results are lazy Dask arrays")


# --- a class axis split across chunks -----------------------------------------------------------

def _chunk_backend(x):
    """The backend for a computed chunk (CPU for NumPy, CUDA for CuPy) and its namespace."""
    if isinstance(x, np.ndarray):
        from . import _cpu

        return _cpu, np
    from . import _cuda

    return _cuda, _namespace_of(x)


def _class_offsets(logits):
    da = _da()
    offsets = np.cumsum((0,) + logits.chunks[-1][:-1]).astype(np.int64)
    return da.from_array(offsets, chunks=1)


def _split_normalizer(logits, labels=None, check_labels=False):
    """Per row of logits whose class axis is split: (m, r) combined over the row's
    blocks, and for sparse labels the target logit: an array of batch + (2 or 3,)."""
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    num_classes = logits.shape[-1]
    width = 2 if labels is None else 3

    def partial_block(x, offset, *label_block):
        backend, xp = _chunk_backend(x)
        rows = x.reshape(-1, x.shape[-1])
        m, r = xp.empty(len(rows)), xp.empty(len(rows))
        backend.row_partials(rows, m, r)
        out = [m, r]
        if label_block:
            t = label_block[0].reshape(-1)
            offset = int(offset[0])
            if check_labels and offset == 0:
                bad = xp.flatnonzero((t < 0) | (t >= num_classes))
                if bad.size:
                    first = int(bad[0])
                    raise InvalidArgumentError(
                        f"Received a label value of {int(t[first])} which is outside the valid "
                        f"range of [0, {num_classes}). (Position {first} of its block.)")
            local = t - offset
            inside = (local >= 0) & (local < rows.shape[1])
            picked = rows[xp.arange(len(rows)), xp.clip(local, 0, rows.shape[1] - 1)]
            out.append(xp.where(inside, picked.astype(np.float64), 0.0))
        return xp.stack(out, -1).reshape(x.shape[:-1] + (width,))

    args = [logits, batch + _CLASS, _class_offsets(logits), _CLASS]
    if labels is not None:
        args += [labels, batch]
    parts = da.blockwise(partial_block, batch + _CLASS, *args, dtype=np.float64,
                         concatenate=True, align_arrays=False, adjust_chunks={_CLASS: width})
    last = logits.ndim - 1

    def combine_block(p):
        xp = _namespace_of(p)
        p = p.reshape(p.shape[:-1] + (-1, width))
        m, r = _lse.fold(p[..., 0], p[..., 1], xp)
        return xp.stack([m, r] + ([p[..., 2].sum(-1)] if width == 3 else []), -1)

    # A tree: neighbouring blocks' partials are combined pairwise, log2(blocks) levels.
    while parts.numblocks[-1] > 1:
        pairs = parts.numblocks[-1]
        merged = (2 * width,) * (pairs // 2) + ((width,) if pairs % 2 else ())
        parts = parts.rechunk({last: merged}).map_blocks(
            combine_block, dtype=np.float64, chunks=parts.chunks[:-1] + ((width,) * len(merged),))

    def finish_block(p):
        xp = _namespace_of(p)
        m, r = _lse.finish(p[..., 0], p[..., 1], xp)
        return xp.stack([m, r] + ([p[..., 2]] if width == 3 else []), -1)

    return parts.map_blocks(finish_block, dtype=np.float64)


def _split_sparse(logits, labels, want_grad, check_labels, scale):
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    norm = _split_normalizer(logits, labels, check_labels)

    def loss_block(n):
        xp = _namespace_of(n)
        with np.errstate(invalid="ignore"):  # NaN rows are NaN, quietly, as in the kernels
            return (xp.log1p(n[..., 1]) + (n[..., 0] - n[..., 2])).astype(logits.dtype)

    loss = norm.map_blocks(loss_block, dtype=logits.dtype, drop_axis=logits.ndim - 1)
    if not want_grad:
        return loss, None
    weights, all_zero = scale if scale is not None else (None, False)
    if weights is not None:
        weights = weights.rechunk(logits.chunks[:-1])

    def grad_block(x, offset, t, n, w, zero):
        backend, xp = _chunk_backend(x)
        rows = x.reshape(-1, x.shape[-1])
        if bool(zero):
            return xp.zeros_like(x)
        n = n.reshape(-1, 3)
        w = xp.ones(len(rows)) if w is None else xp.ascontiguousarray(w.reshape(-1), np.float64)
        g = xp.empty_like(rows)
        backend.sparse_grad_given(
            rows, xp.ascontiguousarray(n[:, 0]), xp.ascontiguousarray(n[:, 1]),
            xp.ascontiguousarray(n[:, 2]), (t.reshape(-1) - int(offset[0])).astype(np.int64),
            w, g)
        return g.reshape(x.shape)

    grad = da.blockwise(
        grad_block, batch + _CLASS, logits, batch + _CLASS, _class_offsets(logits), _CLASS,
        labels, batch, norm, batch + "w",
        weights, None if weights is None else batch, all_zero, None if scale is None else "",
        dtype=logits.dtype, concatenate=True, align_arrays=False)
    return loss, grad


def _split_dense(x, y, a, b, want_grad, scale):
    """Loss, gradient and the combined normalizer of dense labels on a split class axis."""
    da = _da()
    batch = _BATCH[:x.ndim - 1]
    norm = _split_normalizer(x)

    def sums_block(xb, yb, n):
        backend, xp = _chunk_backend(xb)
        rows, yrows = xb.reshape(-1, xb.shape[-1]), yb.reshape(-1, yb.shape[-1])
        sum_y, sum_yx = xp.empty(len(rows)), xp.empty(len(rows))
        backend.dense_sums_given(rows, yrows, xp.ascontiguousarray(n.reshape(-1, 2)[:, 0]),
                                 a, b, sum_y, sum_yx)
        return xp.stack([sum_y, sum_yx], -1).reshape(xb.shape[:-1] + (2,))

    sums = da.blockwise(sums_block, batch + _CLASS, x, batch + _CLASS, y, batch + _CLASS,
                        norm, batch + "w", dtype=np.float64, concatenate=True,
                        adjust_chunks={_CLASS: 2})
    sums = sums.rechunk({x.ndim - 1: -1}).map_blocks(
        lambda p: p.reshape(p.shape[:-1] + (-1, 2)).sum(-2), dtype=np.float64,
        chunks=norm.chunks[:-1] + ((2,),))

    def loss_block(n, s2):
        xp = _namespace_of(n)
        with np.errstate(invalid="ignore"):
            return (s2[..., 0] * xp.log1p(n[..., 1]) - s2[..., 1]).astype(x.dtype)

    loss = da.map_blocks(loss_block, norm, sums, dtype=x.dtype, drop_axis=x.ndim - 1)
    if not want_grad:
        return loss, None, norm
    weights, all_zero = scale if scale is not None else (None, False)
    if weights is not None:
        weights = weights.rechunk(x.chunks[:-1])

    def grad_block(xb, yb, n, s2, w, zero):
        backend, xp = _chunk_backend(xb)
        rows, yrows = xb.reshape(-1, xb.shape[-1]), yb.reshape(-1, yb.shape[-1])
        if bool(zero):
            return xp.zeros_like(xb)
        n, s2 = n.reshape(-1, 2), s2.reshape(-1, 2)
        w = xp.ones(len(rows)) if w is None else xp.ascontiguousarray(w.reshape(-1), np.float64)
        g = xp.empty_like(rows)
        backend.dense_grad_given(rows, yrows, xp.ascontiguousarray(n[:, 0]), a, b,
                                 xp.ascontiguousarray(w * s2[:, 0] / (1.0 + n[:, 1])), w, g)
        return g.reshape(xb.shape)

    grad = da.blockwise(
        grad_block, batch + _CLASS, x, batch + _CLASS, y, batch + _CLASS, norm, batch + "w",
        sums, batch + "w", weights, None if weights is None else batch,
        all_zero, None if scale is None else "", dtype=x.dtype, concatenate=True)
    return loss, grad, norm


def _namespace_of(array):
    """NumPy or CuPy: the namespace of a computed chunk."""
    if isinstance(array, np.ndarray):
        return np
    import cupy

    return cupy


def _rows_of(logits, labels):
    """Labels (batch-shaped) rechunked like the logits' batch axes."""
    return labels.rechunk(logits.chunks[:-1])


def _fused_blocks(block_fn, logits, extra, want_grad, out_dtype):
    """Run ``block_fn(x, *extra_blocks)`` per block of rows; returns (loss, grad or None).

    ``extra`` is a list of (array, index) pairs; ``block_fn`` returns the loss
    block, or (loss, grad) when ``want_grad``; the two are carried as one block
    with an extra class column so that each block is computed once.
    """
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    args = [logits, batch + _CLASS]
    for array, index in extra:
        args += [array, index]
    num_classes = logits.shape[-1]
    if not want_grad:
        return da.blockwise(block_fn, batch, *args, dtype=out_dtype, concatenate=True), None

    def both(*blocks):
        loss, grad = block_fn(*blocks)
        xp = _namespace_of(grad)
        return xp.concatenate([grad, xp.asarray(loss, grad.dtype)[..., None]], axis=-1)

    combined = da.blockwise(both, batch + _CLASS, *args, dtype=out_dtype, concatenate=True,
                            adjust_chunks={_CLASS: num_classes + 1})
    return combined[..., num_classes], combined[..., :num_classes]


# --- nn ---------------------------------------------------------------------------------------

def sparse_softmax_cross_entropy_with_logits(labels, logits, return_grad, out, grad_out,
                                             n_threads, validate, scale=None):
    """As :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`, lazily.

    ``scale`` (internal): a Dask array of per-row gradient factors and loss
    weights, and a 0-d Dask array that is true when they must all be zero.
    """
    from . import losses, nn

    da = _da()
    _no_out(out, grad_out)
    logits = _checks.logits_array(logits, da)
    labels = _checks.sparse_labels_array(labels, logits.shape, da)
    if logits.shape[-1] == 0:
        raise ValueError(f"logits must have at least one class; got shape {logits.shape}")
    batch = _BATCH[:logits.ndim - 1]
    if logits.numblocks[-1] > 1:
        check = (validate is None and isinstance(logits._meta, np.ndarray)) or bool(validate)
        loss, grad = _split_sparse(logits, _rows_of(logits, labels), return_grad, check, scale)
        if scale is not None:
            loss = (loss.astype(np.float64) * scale[0]).astype(logits.dtype)
        return (loss, grad) if return_grad else loss
    extra = [(_rows_of(logits, labels), batch)]
    if scale is None:
        def block(x, t):
            return nn.sparse_softmax_cross_entropy_with_logits(
                labels=t, logits=x, return_grad=return_grad, n_threads=n_threads,
                validate=validate)
    else:
        weights, all_zero = scale
        extra += [(weights.rechunk(logits.chunks[:-1]), batch), (all_zero, "")]

        def block(x, t, w, zero):
            result = losses.sparse_softmax_cross_entropy(
                t, x, weights=w, reduction="none", return_grad=return_grad,
                n_threads=n_threads, validate=validate)
            if return_grad and bool(zero):
                return result[0], _namespace_of(result[1]).zeros_like(result[1])
            return result
    loss, grad = _fused_blocks(block, logits, extra, return_grad, logits.dtype)
    return (loss, grad) if return_grad else loss


def dense_softmax_cross_entropy(labels, logits, axis, return_grad, return_labels_grad, out,
                                grad_out, n_threads, label_smoothing=0.0, scale=None):
    """As the dense ``nn`` functions (and, with ``label_smoothing``/``scale``, the losses), lazily."""
    from . import losses, nn

    da = _da()
    _no_out(out, grad_out)
    logits = _checks.logits_array(logits, da)
    axis = _checks.normalize_axis(axis, logits.ndim)
    labels, labels_shape = _checks.dense_labels_array(labels, logits.shape, logits.dtype, da)
    x = da.moveaxis(logits, axis, -1)
    y = da.moveaxis(labels, axis, -1).rechunk(x.chunks)
    batch = _BATCH[:x.ndim - 1]
    want_grad = return_grad or return_labels_grad
    if x.numblocks[-1] > 1:
        num_classes = x.shape[-1]
        a, b = 1.0 - label_smoothing, label_smoothing / num_classes if num_classes else 0.0
        loss, grad, norm = _split_dense(x, y, a, b, return_grad, scale)
        results = [loss if scale is None
                   else (loss.astype(np.float64) * scale[0]).astype(logits.dtype)]
        if return_grad:
            results.append(da.moveaxis(grad, -1, axis))
        if return_labels_grad:
            m, r = norm[..., 0:1], norm[..., 1:2]
            labels_grad = (a * (da.log1p(r) + m - x)).astype(logits.dtype)
            results.append(_sum_to_shape(da.moveaxis(labels_grad, -1, axis), labels_shape))
        return tuple(results) if len(results) > 1 else results[0]

    if scale is None:
        def block(xb, yb):
            if return_grad and return_labels_grad:
                loss, g, gy = nn.softmax_cross_entropy_with_logits(
                    labels=yb, logits=xb, return_grad=True, return_labels_grad=True,
                    n_threads=n_threads)
                return loss, _namespace_of(g).concatenate([g, gy], axis=-1)
            return nn.softmax_cross_entropy_with_logits(
                labels=yb, logits=xb, return_grad=return_grad,
                return_labels_grad=return_labels_grad, n_threads=n_threads)
        extra = [(y, batch + _CLASS)]
    else:
        weights, all_zero = scale

        def block(xb, yb, w, zero):
            result = losses.softmax_cross_entropy(
                yb, xb, weights=w, label_smoothing=label_smoothing, reduction="none",
                return_grad=return_grad, n_threads=n_threads)
            if return_grad and bool(zero):
                return result[0], _namespace_of(result[1]).zeros_like(result[1])
            return result
        extra = [(y, batch + _CLASS), (weights.rechunk(x.chunks[:-1]), batch), (all_zero, "")]

    if return_grad and return_labels_grad:
        # both gradients ride in one block: [grad | labels_grad | loss]
        num_classes = x.shape[-1]
        loss, both = _fused_blocks_wide(block, x, extra, 2 * num_classes)
        grad = da.moveaxis(both[..., :num_classes], -1, axis)
        labels_grad = da.moveaxis(both[..., num_classes:], -1, axis)
        labels_grad = _sum_to_shape(labels_grad, labels_shape)
        return loss, grad, labels_grad
    loss, grad = _fused_blocks(block, x, extra, want_grad, logits.dtype)
    if not want_grad:
        return loss
    grad = da.moveaxis(grad, -1, axis)
    if return_labels_grad:
        return loss, _sum_to_shape(grad, labels_shape)
    return loss, grad


def _fused_blocks_wide(block_fn, x, extra, width):
    da = _da()
    batch = _BATCH[:x.ndim - 1]
    args = [x, batch + _CLASS]
    for array, index in extra:
        args += [array, index]

    def both(*blocks):
        loss, wide = block_fn(*blocks)
        xp = _namespace_of(wide)
        return xp.concatenate([wide, xp.asarray(loss, wide.dtype)[..., None]], axis=-1)

    combined = da.blockwise(both, batch + _CLASS, *args, dtype=x.dtype, concatenate=True,
                            adjust_chunks={_CLASS: width + 1})
    return combined[..., width], combined[..., :width]


def _sum_to_shape(full, shape):
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and full.shape[lead + k] != 1)
    if not axes:
        return full
    return full.sum(axis=axes, dtype=np.float64).reshape(shape).astype(full.dtype)


# --- weights and reductions -----------------------------------------------------------------

def weighting(weights, losses_shape, reduction):
    """(per-row factor w_i / denominator broadcast to the losses, all-zero flag, reduce)."""
    from .losses import Reduction

    da = _da()
    reduction = Reduction.validate(reduction)
    if weights is None:
        raise ValueError("weights must be given (a scalar or an array), got None")
    w = weights if isinstance(weights, da.Array) else da.asarray(np.asarray(weights))
    if w.dtype.kind not in "biuf":
        raise TypeError(f"weights must be real numbers, got dtype {w.dtype}")
    losses_shape = tuple(losses_shape)
    if w.ndim != 0 and (w.ndim != len(losses_shape)
                        or any(d not in (1, n) for d, n in zip(w.shape, losses_shape))):
        raise ValueError(f"weights can not be broadcast to values. values.shape={losses_shape}, "
                         f"weights.shape={w.shape}")
    wb = da.broadcast_to(w.astype(np.float64), losses_shape)
    if reduction in (Reduction.NONE, Reduction.SUM):
        denominator = da.asarray(np.float64(1.0))
    elif reduction == Reduction.MEAN:
        denominator = wb.sum()
    elif reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
        denominator = (wb != 0).sum().astype(np.float64)
    else:
        denominator = da.asarray(np.float64(np.prod(losses_shape)))
    zero = denominator == 0
    factor = da.where(zero, 0.0, wb / da.where(zero, 1.0, denominator))

    def reduce(weighted_losses, dtype):
        if reduction == Reduction.NONE:
            return weighted_losses.astype(dtype)
        return da.where(zero, 0.0, weighted_losses.sum(dtype=np.float64)).astype(dtype)

    return factor, zero, reduce
