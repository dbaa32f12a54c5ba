"""The row math of ``_src/fx_row_math.h``, for arrays: the log-sum-exp combine rule of
partial normalizers, and the finishing of a row's loss from its normalizer, under the C
functions' names (the Dask executor's split class axis uses them).

A row's normalizer is ``(m, r)`` with ``sum(exp(x - m)) = 1 + r``; ``(-inf, -1)`` is the
empty normalizer; a NaN ``r`` stays NaN. On NumPy arrays these run the C functions
themselves (``fastxent._backends._kernels``), so a split class axis gives the bits of a whole row;
on other arrays (CuPy) the same expressions, in the same order, in the array library.
"""

import numpy as np


def _flat(*arrays):
    """The arrays broadcast together, as contiguous float64 vectors, and their shape."""
    arrays = np.broadcast_arrays(*arrays)
    return [np.ascontiguousarray(a, np.float64).reshape(-1) for a in arrays], arrays[0].shape


def fx_combine(m1, r1, m2, r2, xp=np):
    """Combine two arrays of partial normalizers elementwise; returns (m, r).

    As ``fx_combine``: the larger max keeps its ``r`` and takes the other's ``1 + r``
    scaled by ``exp`` of the difference; tied maxima give ``(r1 + 1) + r2``.
    """
    if xp is np:
        from .._backends._kernels import combine_normalizers

        (m1, r1, m2, r2), shape = _flat(m1, r1, m2, r2)
        m, r = np.empty_like(m1), np.empty_like(m1)
        combine_normalizers(m1, r1, m2, r2, m, r)
        return m.reshape(shape), r.reshape(shape)
    empty1 = (m1 == -np.inf) & (r1 == -1)
    empty2 = (m2 == -np.inf) & (r2 == -1)
    second = m2 > m1
    m = xp.where(second, m2, m1)
    r = xp.where(second, r2 + (1.0 + r1) * xp.exp(xp.where(second, m1 - m2, 0.0)),
                 xp.where(m2 == m1, (r1 + 1.0) + r2,
                          r1 + (1.0 + r2) * xp.exp(xp.where(second, 0.0, m2 - m1))))
    r = xp.where(empty2, r1, xp.where(empty1, r2, r))
    m = xp.where(empty2, m1, xp.where(empty1, m2, m))
    return m, r


def fold(m, r, xp=np):
    """Combine partials along the last axis, in order (still a partial: empty stays empty)."""
    total_m, total_r = m[..., 0], r[..., 0]
    for k in range(1, m.shape[-1]):
        total_m, total_r = fx_combine(total_m, total_r, m[..., k], r[..., k], xp)
    return total_m, total_r


def finish(m, r, xp=np):
    """A whole row's normalizer from its combined partials, by the NaN rule (``fx_row_r``):
    a row whose max is not finite gets r = NaN, as the kernels give it."""
    with np.errstate(invalid="ignore"):
        return m, xp.where((m > -np.inf) & (m < np.inf), r, np.nan)


def fx_sparse_loss(m, r, xt, xp=np):
    """``log1p(r) + (m - x_t)`` from a whole row's normalizer and target logit (NaN rows
    stay NaN)."""
    if xp is np:
        from .._backends._kernels import sparse_row_losses

        (m, r, xt), shape = _flat(m, r, xt)
        out = np.empty_like(m)
        sparse_row_losses(m, r, xt, out)
        return out.reshape(shape)
    return xp.log1p(r) + (m - xt)


def fx_dense_loss(r, sum_y, sum_yx, xp=np):
    """``sum(y') log1p(r) - sum(y' (x - m))``: ``sum(y') lse - sum(y' x)`` from a whole
    row's normalizer and its sums relative to the max (so that the max cancels)."""
    if xp is np:
        from .._backends._kernels import dense_row_losses

        (r, sum_y, sum_yx), shape = _flat(r, sum_y, sum_yx)
        out = np.empty_like(r)
        dense_row_losses(r, sum_y, sum_yx, out)
        return out.reshape(shape)
    return sum_y * xp.log1p(r) - sum_yx
