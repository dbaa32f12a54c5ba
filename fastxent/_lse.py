"""The row math of ``_src/fx_kernels.h``, for arrays: the log-sum-exp combine rule of
partial normalizers, and the finishing of a row's loss from its normalizer, under the C
functions' names (the Dask frontend's split class axis uses them).

The same rule as ``fx_combine`` in ``_src/fx_kernels.h`` and the CUDA kernels: a
row's normalizer is ``(m, r)`` with ``sum(exp(x - m)) = 1 + r``; ``(-inf, -1)``
is the empty normalizer; a NaN ``r`` stays NaN.
"""

import numpy as np


def fx_combine(m1, r1, m2, r2, xp=np):
    """Combine two arrays of partial normalizers elementwise; returns (m, r)."""
    with np.errstate(invalid="ignore", over="ignore"):
        empty1 = (m1 == -np.inf) & (r1 == -1)
        empty2 = (m2 == -np.inf) & (r2 == -1)
        first = m1 >= m2
        m = xp.where(first, m1, m2)
        r = xp.where(first, r1 + (1 + r2) * xp.exp(m2 - m1), r2 + (1 + r1) * xp.exp(m1 - m2))
        r = xp.where(empty1, r2, xp.where(empty2, r1, r))
        m = xp.where(empty1, m2, xp.where(empty2, m1, m))
    return m, r


def fold(m, r, xp=np):
    """Combine partials along the last axis, in order (still a partial: empty stays empty)."""
    total_m, total_r = m[..., 0], r[..., 0]
    for k in range(1, m.shape[-1]):
        total_m, total_r = fx_combine(total_m, total_r, m[..., k], r[..., k], xp)
    return total_m, total_r


def finish(m, r, xp=np):
    """A whole row's normalizer from its combined partials: a row with no entry above
    -inf gets r = NaN, as the kernels give it."""
    return m, xp.where(m == -np.inf, np.nan, r)


def fx_sparse_loss(m, r, xt, xp=np):
    """``lse - x_t`` from a whole row's normalizer and target logit (NaN rows stay NaN)."""
    with np.errstate(invalid="ignore"):
        return xp.log1p(r) + (m - xt)


def fx_dense_loss(sum_y, log_s, sum_yx):
    """``sum(y') lse - sum(y' x)`` from ``log_s = log1p(r)`` and the sums relative to the max."""
    with np.errstate(invalid="ignore"):
        return sum_y * log_s - sum_yx
