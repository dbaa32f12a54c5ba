"""The lazy executor: a plan of ``fastxent._core.plan`` run on Dask arrays, block by block.

The call is checked and laid out once, by the core's planner, on the Dask arrays'
metadata. Here only what is Dask's own is done: the blocks, their offsets in the whole
array, the reductions' tree and the class axis split across chunks.

Class axis in one chunk: each block runs the core's eager step (``fastxent._core.rows``)
on its chunk's backend (``fastxent._backends.chunk_backend``: the CPU
for NumPy chunks, CUDA for CuPy ones), one kernel call per block for the loss and the
gradient, with every option of the plan; a bad label, found when a block computes, is
reported at its position in the whole array. Per-row results are the eager call's bits.

Class axis split across chunks (a vocabulary too large for one worker): each block
computes its rows' partial normalizers (and, for sparse labels, the target logit when the
target falls in the block); the partials of a row are combined across its blocks with the
log-sum-exp rule (``fastxent._dask.lse.fx_combine``, the C kernels' rule under the same name);
the loss follows, and each block writes its slice of the gradient from the combined
normalizer. The class axis is never rechunked. The options that act on whole rows
(``ignore_index``, ``where`` of rows) are carried; those that weigh or mask single
classes are not (NotImplementedError names them).

Weights and reductions are the core's (``fastxent._core.reduce``), on lazy arrays; the per-row
factor ``w_i / denominator`` goes into the per-block calls. Imported only when a call gets
a Dask array; Dask is an optional dependency (``pip install fastxent[dask]``).
"""

import numpy as np

from .._backends import chunk_backend
from .._core import checks, rows
from .._core.reduce import Weighting
from . import lse

_BATCH = "abcdefghijklmnopqrstuvwxy"
_CLASS = "z"


def _da():
    import dask.array as da

    return da


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


def _starts(offsets):
    """A block's position in the whole batch, from its offset blocks."""
    return tuple(int(o[0]) for o in offsets)


def _laid_out(xp, block):
    """A block as a C-contiguous, aligned array: a chunk as Dask hands it over may be a
    strided view (a moved class axis) or unaligned (unpickled on a worker), which the
    kernels would gather row by row, with other roundings than the contiguous call's."""
    if block is None:
        return None
    if xp is np:
        return np.require(block, requirements="CA")
    return xp.ascontiguousarray(block)


def _class_axis_last(plan, *arrays):
    """``arrays`` with the plan's class axis moved last (None kept)."""
    last = plan.logits.ndim - 1
    return [a if a is None or plan.axis == last else _da().moveaxis(a, plan.axis, -1)
            for a in arrays]


def _not_on_a_split_class_axis(**options):
    for name, given in options.items():
        if given:
            raise NotImplementedError(
                f"{name} is not available with the class axis split across chunks; make the "
                f"class axis one chunk (logits.rechunk({{-1: -1}}))")


# --- a class axis split across chunks -----------------------------------------------------------

def _split_normalizer(logits, labels=None, validate=None, ignore_index=None):
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
                checks.sparse_label_rows(t, num_classes, backend, validate,
                                          ignore_index=ignore_index, offsets=_starts(offsets))
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
        m, r = lse.fold(p[..., 0], p[..., 1], xp)
        return xp.stack([m, r] + ([p[..., 2].sum(-1)] if width == 3 else []), -1)

    # A tree: neighbouring blocks' partials are combined pairwise, log2(blocks) levels.
    while parts.numblocks[-1] > 1:
        pairs = parts.numblocks[-1]
        merged = (2 * width,) * (pairs // 2) + ((width,) if pairs % 2 else ())
        parts = parts.rechunk({last: merged}).map_blocks(
            combine_block, dtype=np.float64, chunks=parts.chunks[:-1] + ((width,) * len(merged),))

    def finish_block(p):
        xp = chunk_backend(p).xp
        m, r = lse.finish(p[..., 0], p[..., 1], xp)
        return xp.stack([m, r] + ([p[..., 2]] if width == 3 else []), -1)

    return parts.map_blocks(finish_block, dtype=np.float64)


def _kept_rows(loss, keep):
    """``loss`` with the rows not kept set to 0 (a masked or ignored row)."""
    return loss if keep is None else _da().where(keep, loss, 0).astype(loss.dtype)


def _split_sparse(x, t, plan, want_grad, weighting):
    """Per-row losses and the gradient of integer labels on a split class axis."""
    da = _da()
    batch = _BATCH[:x.ndim - 1]
    ignore = None if plan.options is None else plan.options.ignore_index
    norm = _split_normalizer(x, t, plan.validate, ignore)
    dtype = plan.loss_dtype
    keep = None if ignore is None else t != ignore

    def loss_block(n):
        xp = chunk_backend(n).xp
        return lse.fx_sparse_loss(n[..., 0], n[..., 1], n[..., 2], xp).astype(dtype)

    loss = _kept_rows(norm.map_blocks(loss_block, dtype=dtype, drop_axis=x.ndim - 1), keep)
    if not want_grad:
        return loss, None

    def grad_block(xb, offset, tb, n, *scaled):
        backend = chunk_backend(xb)
        xp = backend.xp
        rows = xb.reshape(-1, xb.shape[-1])
        zero, w = _block_scale(xp, scaled)
        if zero:
            return xp.zeros_like(xb)
        w = xp.ones(len(rows)) if w is None else w
        n = n.reshape(-1, 3)
        g = xp.empty_like(rows)
        backend.sparse_grad_given(
            rows, xp.ascontiguousarray(n[:, 0]), xp.ascontiguousarray(n[:, 1]),
            xp.ascontiguousarray(n[:, 2]), (tb.reshape(-1) - int(offset[0])).astype(np.int64),
            w, g)
        if ignore is not None:
            g[tb.reshape(-1) == ignore] = 0
        return g.reshape(xb.shape)

    grad = da.blockwise(
        grad_block, batch + _CLASS, x, batch + _CLASS, _offsets(x.chunks[-1]), _CLASS,
        t, batch, norm, batch + "w", *_flat_args(_scaled(weighting, x.chunks[:-1], batch)),
        dtype=x.dtype, concatenate=True, align_arrays=False)
    return loss, grad


def _split_dense(x, y, plan, rows, want_grad, want_labels_grad, weighting):
    """Per-row losses and the gradients of label distributions on a split class axis."""
    da = _da()
    batch = _BATCH[:x.ndim - 1]
    a, b = plan.label_coef
    norm = _split_normalizer(x)
    dtype = plan.loss_dtype

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
        return lse.fx_dense_loss(n[..., 1], s2[..., 0], s2[..., 1], xp).astype(dtype)

    loss = _kept_rows(da.map_blocks(loss_block, norm, sums, dtype=dtype, drop_axis=x.ndim - 1),
                      rows)
    grad = labels_grad = None
    kept = 1.0 if rows is None else rows[..., None]
    if want_labels_grad:
        m, r = norm[..., 0:1], norm[..., 1:2]
        labels_grad = (kept * (a * (da.log1p(r) + m - x))).astype(x.dtype)
    if not want_grad:
        return loss, grad, labels_grad

    def grad_block(xb, yb, n, s2, *scaled):
        backend = chunk_backend(xb)
        xp = backend.xp
        rows, yrows = xb.reshape(-1, xb.shape[-1]), yb.reshape(-1, yb.shape[-1])
        zero, w = _block_scale(xp, scaled)
        if zero:
            return xp.zeros_like(xb)
        w = xp.ones(len(rows)) if w is None else w
        n, s2 = n.reshape(-1, 2), s2.reshape(-1, 2)
        g = xp.empty_like(rows)
        backend.dense_grad_given(rows, yrows, xp.ascontiguousarray(n[:, 0]),
                                 xp.ascontiguousarray(n[:, 1]), a, b,
                                 xp.ascontiguousarray(s2[:, 0]), w, g)
        return g.reshape(xb.shape)

    grad = da.blockwise(
        grad_block, batch + _CLASS, x, batch + _CLASS, y, batch + _CLASS, norm, batch + "w",
        sums, batch + "w", *_flat_args(_scaled(weighting, x.chunks[:-1], batch)),
        dtype=x.dtype, concatenate=True)
    if rows is not None:
        grad = da.where(rows[..., None], grad, 0).astype(x.dtype)
    return loss, grad, labels_grad


# --- a class axis in one chunk: a kernel call per block ---------------------------------------

def _fused_blocks(block_fn, logits, extra, width, dtype):
    """Run ``block_fn(x, *extra_blocks)`` per block of rows (the extra arrays already
    chunked like ``logits``' rows); it returns the loss block and a block of ``width`` class
    columns (the gradients side by side), or None when ``width`` is 0. Both travel as one
    block of ``dtype`` with the loss as an extra column, so that each block is computed
    once. Returns (loss, wide or None)."""
    da = _da()
    batch = _BATCH[:logits.ndim - 1]
    args = [logits, batch + _CLASS] + _flat_args(extra)
    if not width:
        return da.blockwise(lambda *b: block_fn(*b)[0], batch, *args, dtype=dtype,
                            concatenate=True, align_arrays=False), None

    def both(*blocks):
        loss, wide = block_fn(*blocks)
        xp = chunk_backend(wide).xp
        return xp.concatenate([wide.astype(dtype, copy=False), loss.astype(dtype)[..., None]],
                              axis=-1)

    combined = da.blockwise(both, batch + _CLASS, *args, dtype=dtype, concatenate=True,
                            align_arrays=False, adjust_chunks={_CLASS: width + 1})
    return combined[..., width], combined[..., :width]


def _scaled(weighting, rows_chunks, batch):
    """The extra block arguments of a reduction: each row's factor and the all-zero flag."""
    if weighting is None:
        return []
    return [(weighting.factor().rechunk(rows_chunks), batch), (weighting.zero, "")]


def _block_scale(xp, scaled):
    """A block's ``_scaled`` arguments as (whether the reduction's denominator is 0, so
    that the gradient is 0; the per-row gradient factor, or None without a reduction)."""
    if not scaled:
        return False, None
    factor, zero = scaled
    return bool(zero), xp.ascontiguousarray(factor.reshape(-1), dtype=np.float64)


def _row_masses(t, plan, offsets):
    """PyTorch's ``a * u[t]`` and ``a`` per row, lazily, from the checked labels: what the
    reductions count (``SparsePlan.weighting``)."""
    da = _da()
    batch = _BATCH[:t.ndim]
    # the task holds these, not the plan (whose Dask arrays would travel with every task)
    num_classes, validate, host_options = plan.logits.shape[plan.axis], plan.validate, plan.options
    ignore_index = host_options.ignore_index

    def masses(tb, *offs):
        backend = chunk_backend(tb)
        xp = backend.xp
        rows = checks.sparse_label_rows(tb, num_classes, backend, validate,
                                         ignore_index=ignore_index, offsets=_starts(offs))
        options = host_options.on(xp)
        keep = options.keep(rows)
        both = [options.row_mass(rows), xp.ones(len(rows)) if keep is None else keep * 1.0]
        return xp.stack(both, -1).reshape(tb.shape + (2,))

    both = da.blockwise(masses, batch + "w", t, batch, *_flat_args(offsets),
                        new_axes={"w": 2}, dtype=np.float64, align_arrays=False)
    keep = None if ignore_index is None else both[..., 1] != 0
    return both[..., 0], keep


def sparse(plan, return_grad):
    """Run a ``fastxent._core.plan.SparsePlan`` of Dask arrays: lazy loss (and gradient)."""
    da = _da()
    x, = _class_axis_last(plan, plan.logits)
    t = plan.labels.rechunk(x.chunks[:-1])
    batch = _BATCH[:x.ndim - 1]
    offsets = _batch_offsets(x)
    weighting = None
    if plan.reduction is not None:
        mass, keep = _row_masses(t, plan, offsets) if plan.options is not None else (None, None)
        weighting = Weighting(plan.weights, t.shape, plan.reduction, da, mass=mass, keep=keep)
    options = plan.options
    if x.numblocks[-1] > 1:
        _not_on_a_split_class_axis(
            class_weight=options is not None and options.class_weight is not None,
            label_smoothing=options is not None and options.eps != 0)
        loss, grad = _split_sparse(x, t, plan, return_grad, weighting)
    else:
        n_offsets, dtype = len(offsets), plan.loss_dtype
        num_classes, validate, n_threads = x.shape[-1], plan.validate, plan.n_threads
        ignore_index = None if options is None else options.ignore_index

        def block(xb, tb, *rest):   # holds no Dask array: the task's closure travels with it
            backend = chunk_backend(xb)
            xp = backend.xp
            zero, scale = _block_scale(xp, rest[n_offsets:])
            if zero:
                return xp.zeros(tb.shape, dtype), xp.zeros_like(xb) if return_grad else None
            label_rows = checks.sparse_label_rows(tb, num_classes, backend, validate,
                                                  ignore_index=ignore_index,
                                                  offsets=_starts(rest[:n_offsets]))
            return rows.sparse_rows(
                backend, _laid_out(xp, xb), label_rows, axis=xb.ndim - 1, loss_dtype=dtype,
                kernel_options={} if options is None else options.on(xp).kernel_options(),
                n_threads=n_threads, want_grad=return_grad, scale=scale)

        extra = [(t, batch)] + offsets + _scaled(weighting, x.chunks[:-1], batch)
        loss, grad = _fused_blocks(block, x, extra, x.shape[-1] if return_grad else 0, dtype)
        if grad is not None:
            grad = grad.astype(x.dtype)
    if weighting is not None:
        loss = weighting.reduce(loss, x.dtype)
    if not return_grad:
        return loss
    return loss, grad if plan.axis == x.ndim - 1 else da.moveaxis(grad, -1, plan.axis)


def dense(plan, return_grad=False, return_labels_grad=False):
    """Run a ``fastxent._core.plan.DensePlan`` of Dask arrays: lazy loss, then the gradients
    asked for."""
    da = _da()
    x, y, entries = _class_axis_last(plan, plan.logits, plan.labels, plan.entries)
    y = y.rechunk(x.chunks)
    entries = None if entries is None else entries.rechunk(x.chunks)
    mask = None if plan.rows is None else plan.rows.rechunk(x.chunks[:-1])
    weighting = (None if plan.reduction is None
                 else Weighting(plan.weights, x.shape[:-1], plan.reduction, da))
    num_classes = x.shape[-1]
    if x.numblocks[-1] > 1:
        _not_on_a_split_class_axis(class_weight=plan.class_weight is not None,
                                   where_of_single_logits=entries is not None)
        loss, grad, labels_grad = _split_dense(x, y, plan, mask, return_grad,
                                               return_labels_grad, weighting)
    else:
        batch = _BATCH[:x.ndim - 1]
        extra = [(y, batch + _CLASS)]
        if entries is not None:
            extra.append((entries, batch + _CLASS))
        if mask is not None:
            extra.append((mask, batch))
        extra += _scaled(weighting, x.chunks[:-1], batch)
        dtype, label_coef, n_threads = plan.loss_dtype, plan.label_coef, plan.n_threads
        class_weight = plan.class_weight
        has_entries, has_rows = entries is not None, mask is not None

        def block(xb, yb, *rest):   # holds no Dask array: the task's closure travels with it
            backend = chunk_backend(xb)
            xp = backend.xp
            rest = list(rest)
            eb = rest.pop(0) if has_entries else None
            rb = rest.pop(0) if has_rows else None
            zero, scale = _block_scale(xp, rest)
            if zero:
                return (xp.zeros(xb.shape[:-1], dtype),
                        xp.zeros(xb.shape[:-1] + (width,), xb.dtype) if width else None)
            loss, g, gy = rows.dense_rows(
                backend, _laid_out(xp, xb), _laid_out(xp, yb), axis=xb.ndim - 1,
                loss_dtype=dtype, label_coef=label_coef,
                kernel_options={} if class_weight is None
                else {"class_weight": xp.asarray(class_weight)},
                n_threads=n_threads, want_grad=return_grad,
                want_labels_grad=return_labels_grad, entries=_laid_out(xp, eb), rows=rb,
                scale=scale)
            wide = [part for part in (g, gy) if part is not None]
            return loss, (xp.concatenate(wide, axis=-1) if len(wide) > 1
                          else wide[0] if wide else None)

        width = num_classes * (int(return_grad) + int(return_labels_grad))
        loss, wide = _fused_blocks(block, x, extra, width, dtype)
        grad = wide[..., :num_classes].astype(x.dtype) if return_grad else None
        labels_grad = (wide[..., width - num_classes:].astype(x.dtype) if return_labels_grad
                       else None)
    results = [loss if weighting is None else weighting.reduce(loss, x.dtype)]
    if return_grad:
        results.append(da.moveaxis(grad, -1, plan.axis))
    if return_labels_grad:
        results.append(rows.sum_to_shape(da, da.moveaxis(labels_grad, -1, plan.axis),
                                         plan.labels_shape))
    return tuple(results) if len(results) > 1 else results[0]
