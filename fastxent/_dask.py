"""The Dask frontend: every public function on Dask arrays, lazily, over the core's pieces.

The arguments are checked once, here, on the Dask arrays' metadata (``fastxent._checks``);
each block then goes straight to its chunk's backend (``fastxent._backend.chunk_backend``:
the CPU for NumPy chunks, CUDA for CuPy ones) through the core's row layout
(``fastxent._rows.fused``), one kernel call per block for the loss and the gradient. A bad
label, found when a block computes, is reported at its position in the whole array.

Class axis split across chunks (a vocabulary too large for one worker): each block
computes its rows' partial normalizers (and, for sparse labels, the target logit when the
target falls in the block); the partials of a row are combined across its blocks with the
log-sum-exp rule (``fastxent._lse.fx_combine``, the C kernels' rule under the same name);
the loss follows, and each block writes its slice of the gradient from the combined
normalizer. The class axis is never rechunked.

Weights and reductions are Dask reductions; the per-row factor ``w_i / denominator`` goes
into the per-block calls. Same functions as ``fastxent._core``: ``sparse``, ``dense``,
``weighted``. Imported only when a call gets a Dask array (``fastxent._frontend``); Dask is
an optional dependency (``pip install fastxent[dask]``).
"""

import numpy as np

from . import _checks, _lse, _rows
from ._backend import chunk_backend
from ._core import Reduction, squeeze_last, weights_array
from ._errors import InvalidArgumentError
from ._options import SparseOptions

_BATCH = "abcdefghijklmnopqrstuvwxy"
_CLASS = "z"


def _da():
    import dask.array as da

    return da


def _as_dask(array, name):
    da = _da()
    _checks._given(array, name)
    return array if isinstance(array, da.Array) else da.asarray(array)


def _no_where(where):
    if where is not None:
        raise NotImplementedError("where= is not available on Dask arrays")


def _no_out(out, grad_out):
    if out is not None or grad_out is not None:
        raise TypeError("out= and grad_out= are not supported for Dask arrays: "
                        "the results are lazy Dask arrays")


def _offsets(chunks):
    """A Dask array of one entry per chunk: where the chunk starts along its axis."""
    return _da().from_array(np.cumsum((0,) + tuple(chunks[:-1])).astype(np.int64), chunks=1)


def _batch_offsets(logits):
    """(array, index) pairs: each batch axis's chunk starts, for blockwise."""
    batch = _BATCH[:logits.ndim - 1]
    return [(_offsets(logits.chunks[k]), batch[k]) for k in range(logits.ndim - 1)]


def _flat_args(pairs):
    args = []
    for array, index in pairs:
        args += [array, index]
    return args


def _checked_label_rows(backend, t, num_classes, validate, offsets):
    """A block's labels as int64 rows, range-checked as the core checks them, with the
    position of a bad one given in the whole array."""
    return _checks.sparse_label_rows(t, num_classes, backend, validate,
                                     offsets=tuple(int(o[0]) for o in offsets))


# --- a class axis split across chunks -----------------------------------------------------------

def _split_normalizer(logits, labels=None, validate=None):
    """Per row of logits whose class axis is split: (m, r) combined over the row's
    blocks, and for sparse labels the target logit: an array of batch + (2 or 3,)."""
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    num_classes = logits.shape[-1]
    width = 2 if labels is None else 3
    batch_offsets = _batch_offsets(logits)
    n_offsets = len(batch_offsets)

    def partial_block(x, offset, *rest):
        backend = chunk_backend(x)
        xp = backend.xp
        rows = x.reshape(-1, x.shape[-1])
        m, r = xp.empty(len(rows)), xp.empty(len(rows))
        backend.row_partials(rows, m, r)
        out = [m, r]
        if rest:
            t, offsets = rest[0], rest[1:1 + n_offsets]
            offset = int(offset[0])
            if offset == 0:   # the first class block checks the labels, once
                _checked_label_rows(backend, t, num_classes, validate, offsets)
            t = t.reshape(-1)
            local = t - offset
            inside = (local >= 0) & (local < rows.shape[1])
            picked = rows[xp.arange(len(rows)), xp.clip(local, 0, rows.shape[1] - 1)]
            out.append(xp.where(inside, picked.astype(np.float64), 0.0))
        return xp.stack(out, -1).reshape(x.shape[:-1] + (width,))

    args = [logits, batch + _CLASS, _offsets(logits.chunks[-1]), _CLASS]
    if labels is not None:
        args += [labels, batch] + _flat_args(batch_offsets)
    parts = da.blockwise(partial_block, batch + _CLASS, *args, dtype=np.float64,
                         concatenate=True, align_arrays=False, adjust_chunks={_CLASS: width})
    last = logits.ndim - 1

    def combine_block(p):
        xp = chunk_backend(p).xp
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
        xp = chunk_backend(p).xp
        m, r = _lse.finish(p[..., 0], p[..., 1], xp)
        return xp.stack([m, r] + ([p[..., 2]] if width == 3 else []), -1)

    return parts.map_blocks(finish_block, dtype=np.float64)


def _split_sparse(logits, labels, want_grad, validate, scale):
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    norm = _split_normalizer(logits, labels, validate)

    def loss_block(n):
        xp = chunk_backend(n).xp
        return _lse.fx_sparse_loss(n[..., 0], n[..., 1], n[..., 2], xp).astype(logits.dtype)

    loss = norm.map_blocks(loss_block, dtype=logits.dtype, drop_axis=logits.ndim - 1)
    if not want_grad:
        return loss, None
    weights, all_zero = scale if scale is not None else (None, False)
    if weights is not None:
        weights = weights.rechunk(logits.chunks[:-1])

    def grad_block(x, offset, t, n, w, zero):
        backend = chunk_backend(x)
        xp = backend.xp
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
        grad_block, batch + _CLASS, logits, batch + _CLASS, _offsets(logits.chunks[-1]), _CLASS,
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
        backend = chunk_backend(xb)
        xp = backend.xp
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
        xp = chunk_backend(n).xp
        return _lse.fx_dense_loss(n[..., 1], s2[..., 0], s2[..., 1], xp).astype(x.dtype)

    loss = da.map_blocks(loss_block, norm, sums, dtype=x.dtype, drop_axis=x.ndim - 1)
    if not want_grad:
        return loss, None, norm
    weights, all_zero = scale if scale is not None else (None, False)
    if weights is not None:
        weights = weights.rechunk(x.chunks[:-1])

    def grad_block(xb, yb, n, s2, w, zero):
        backend = chunk_backend(xb)
        xp = backend.xp
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


# --- a class axis in one chunk: a kernel call per block ---------------------------------------

def _fused_blocks(block_fn, logits, extra, width, out_dtype):
    """Run ``block_fn(x, *extra_blocks)`` per block of rows (the extra arrays already
    chunked like ``logits``' rows); it returns the loss block and
    a block of ``width`` class columns (the gradients side by side), or None when
    ``width`` is 0. Both travel as one block with the loss as an extra column, so that
    each block is computed once. Returns (loss, wide or None)."""
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    args = [logits, batch + _CLASS] + _flat_args(extra)
    if not width:
        return da.blockwise(lambda *b: block_fn(*b)[0], batch, *args, dtype=out_dtype,
                            concatenate=True, align_arrays=False), None

    def both(*blocks):
        loss, wide = block_fn(*blocks)
        xp = chunk_backend(wide).xp
        return xp.concatenate([wide, xp.asarray(loss, wide.dtype)[..., None]], axis=-1)

    combined = da.blockwise(both, batch + _CLASS, *args, dtype=out_dtype, concatenate=True,
                            align_arrays=False, adjust_chunks={_CLASS: width + 1})
    return combined[..., width], combined[..., :width]


def _weighted_block_loss(loss, w, dtype):
    return (loss.astype(np.float64) * w.reshape(loss.shape)).astype(dtype)


def sparse(labels, logits, *, axis=-1, weights=None, reduction=None, return_grad=False,
           out=None, grad_out=None, n_threads=None, validate=None, ignore_index=None,
           class_weight=None, label_smoothing=0.0, where=None, squeeze=False):
    """As ``fastxent._core.sparse``, lazily (PyTorch's options and ``where`` are not
    available here)."""
    da = _da()
    if SparseOptions.given(ignore_index, class_weight, label_smoothing):
        raise NotImplementedError("ignore_index, class_weight and label_smoothing are not "
                                  "available on Dask arrays")
    _no_where(where)
    _no_out(out, grad_out)
    n_threads = _checks.check_n_threads(n_threads)
    logits = _checks.logits_array(_as_dask(logits, "logits"), da)
    axis = _checks.normalize_axis(axis, logits.ndim)
    if axis != logits.ndim - 1:   # the class axis last, lazily; the gradient moves back
        result = sparse(labels, da.moveaxis(logits, axis, -1), weights=weights,
                        reduction=reduction, return_grad=return_grad, n_threads=n_threads,
                        validate=validate, squeeze=squeeze)
        return (result[0], da.moveaxis(result[1], -1, axis)) if return_grad else result
    labels = _as_dask(labels, "labels")
    if squeeze:
        labels = squeeze_last(da, labels, logits.ndim)
        if weights is not None and np.ndim(weights) == logits.ndim and np.shape(weights)[-1] == 1:
            weights = weights[..., 0]
    labels = _checks.sparse_labels_array(labels, logits.shape, da)
    _checks.at_least_one_class(logits.shape)
    num_classes = logits.shape[-1]
    scale = reduce = None
    if reduction is not None:
        factor, zero, reduce = weighting(weights, logits.shape[:-1], reduction)
        scale = (factor, zero)
    labels = labels.rechunk(logits.chunks[:-1])
    if logits.numblocks[-1] > 1:
        loss, grad = _split_sparse(logits, labels, return_grad, validate, scale)
        if scale is not None:
            loss = (loss.astype(np.float64) * scale[0]).astype(logits.dtype)
    else:
        batch = _BATCH[:logits.ndim - 1]
        offsets = _batch_offsets(logits)
        extra = [(labels, batch)] + offsets
        if scale is not None:
            extra += [(scale[0].rechunk(logits.chunks[:-1]), batch), (scale[1], "")]

        def block(x, t, *rest):
            backend = chunk_backend(x)
            rows = _checked_label_rows(backend, t, num_classes, validate, rest[:len(offsets)])
            w = rest[len(offsets)] if scale is not None else None
            if scale is not None and bool(rest[len(offsets) + 1]):
                xp = backend.xp
                return xp.zeros(t.shape, logits.dtype), xp.zeros_like(x) if return_grad else None
            loss, grad, _ = _rows.fused(
                backend, x, rows, sparse=True, want_grad=return_grad,
                loss_dtype=logits.dtype if w is None else _checks.compute_dtype(logits.dtype),
                scale=None if w is None else backend.xp.ascontiguousarray(
                    w.reshape(-1), dtype=np.float64),
                n_threads=n_threads)
            if w is not None:
                loss = _weighted_block_loss(loss, w, logits.dtype)
            return loss, grad

        loss, grad = _fused_blocks(block, logits, extra, num_classes if return_grad else 0,
                                   logits.dtype)
    if reduce is not None:
        loss = reduce(loss, logits.dtype)
    return (loss, grad) if return_grad else loss


def _sum_to_shape(full, shape):
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and full.shape[lead + k] != 1)
    if not axes:
        return full
    return full.sum(axis=axes, dtype=np.float64).reshape(shape).astype(full.dtype)


def dense(labels, logits, *, axis=-1, weights=None, reduction=None, label_smoothing=0.0,
          class_weight=None, return_grad=False, return_labels_grad=False, out=None,
          grad_out=None, n_threads=None, where=None, labels_name="labels", same_shape=False):
    """As ``fastxent._core.dense``, lazily (``where`` and ``class_weight`` are not available
    here)."""
    da = _da()
    _no_where(where)
    if class_weight is not None:
        raise NotImplementedError("class_weight is not available on Dask arrays")
    _no_out(out, grad_out)
    n_threads = _checks.check_n_threads(n_threads)
    logits = _checks.logits_array(_as_dask(logits, "logits"), da)
    axis = _checks.normalize_axis(axis, logits.ndim)
    _checks.at_least_one_class(logits.shape, axis)
    labels = _as_dask(labels, labels_name)
    if same_shape and labels.shape != logits.shape:
        raise ValueError(f"{labels_name} shape {labels.shape} must equal "
                         f"logits shape {logits.shape}")
    labels, labels_shape = _checks.dense_labels_array(labels, logits.shape, logits.dtype, da,
                                                      name=labels_name)
    eps = _checks.label_smoothing_value(label_smoothing)
    scale = reduce = None
    x = da.moveaxis(logits, axis, -1)
    if reduction is not None:
        factor, zero, reduce = weighting(weights, x.shape[:-1], reduction)
        scale = (factor, zero)
    y = da.moveaxis(labels, axis, -1).rechunk(x.chunks)
    num_classes = x.shape[-1]
    a, b = 1.0 - eps, eps / num_classes
    results = []
    if x.numblocks[-1] > 1:
        loss, grad, norm = _split_dense(x, y, a, b, return_grad, scale)
        if scale is not None:
            loss = (loss.astype(np.float64) * scale[0]).astype(logits.dtype)
        labels_grad = None
        if return_labels_grad:
            m, r = norm[..., 0:1], norm[..., 1:2]
            labels_grad = (a * (da.log1p(r) + m - x)).astype(logits.dtype)
    else:
        batch = _BATCH[:x.ndim - 1]
        extra = [(y, batch + _CLASS)]
        if scale is not None:
            extra += [(scale[0].rechunk(x.chunks[:-1]), batch), (scale[1], "")]

        def block(xb, yb, *rest):
            backend = chunk_backend(xb)
            xp = backend.xp
            w = rest[0] if scale is not None else None
            if scale is not None and bool(rest[1]):
                zeros = xp.zeros_like(xb)
                return (xp.zeros(xb.shape[:-1], logits.dtype),
                        zeros if return_grad else None)
            loss, g, gy = _rows.fused(
                backend, xb, yb, sparse=False, want_grad=return_grad,
                loss_dtype=logits.dtype if w is None else _checks.compute_dtype(logits.dtype),
                want_labels_grad=return_labels_grad, label_coef=(a, b),
                scale=None if w is None else xp.ascontiguousarray(w.reshape(-1), np.float64),
                n_threads=n_threads)
            if w is not None:
                loss = _weighted_block_loss(loss, w, logits.dtype)
            wide = [part for part in (g, gy) if part is not None]
            return loss, (xp.concatenate(wide, axis=-1) if len(wide) > 1
                          else wide[0] if wide else None)

        width = num_classes * (int(return_grad) + int(return_labels_grad))
        loss, wide = _fused_blocks(block, x, extra, width, logits.dtype)
        grad = wide[..., :num_classes] if return_grad else None
        labels_grad = wide[..., width - num_classes:] if return_labels_grad else None
    results.append(loss if reduce is None else reduce(loss, logits.dtype))
    if return_grad:
        results.append(da.moveaxis(grad, -1, axis))
    if return_labels_grad:
        results.append(_sum_to_shape(da.moveaxis(labels_grad, -1, axis), labels_shape))
    return tuple(results) if len(results) > 1 else results[0]


def weighted(losses, weights, reduction, *, return_grad=False, out=None, grad_out=None,
             n_threads=None):
    """As ``fastxent._core.weighted``, lazily."""
    _no_out(out, grad_out)
    losses = _checks.losses_array(_as_dask(losses, "losses"), _da())
    factor, _, reduce = weighting(weights, losses.shape, reduction)
    result = reduce(losses * factor, losses.dtype)
    return (result, factor.astype(losses.dtype)) if return_grad else result


# --- weights and reductions -----------------------------------------------------------------

def weighting(weights, losses_shape, reduction):
    """(per-row factor w_i / denominator broadcast to the losses, all-zero flag, reduce)."""
    da = _da()
    reduction = Reduction.validate(reduction)
    losses_shape = tuple(losses_shape)
    w = weights_array(weights, losses_shape, da)
    wb = da.broadcast_to(w, losses_shape)
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
