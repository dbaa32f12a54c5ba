"""The vector exp and log1p of every kernel path, in ulps (docs/ACCURACY.md).

Each bound leaves a small margin over the figure measured on x86-64 (the same
polynomials run on every path; they differ by FMA or not)."""

import numpy as np
import pytest

from fastxent._backends import _kernels

EXP_ULP_BOUND = {np.float32: 2.5, np.float64: 1.5}
LOG1P_ULP_BOUND = {np.float32: 1.5, np.float64: 1.5}


def _ulps(got, want, dtype):
    """|got - want| in units of the spacing of want rounded to dtype (the smallest
    subnormal for results that are subnormal)."""
    spacing = np.maximum(np.abs(np.spacing(want.astype(dtype))).astype(np.longdouble),
                         np.finfo(dtype).smallest_subnormal)
    return np.abs(got.astype(np.longdouble) - want) / spacing


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_error_in_ulps(path, dtype):
    lowest = -104.0 if dtype == np.float32 else -746.0
    tiny = np.finfo(dtype).eps / 4
    x = np.concatenate([np.linspace(lowest, 0, 400_001, dtype=dtype),
                        -np.logspace(np.log10(tiny), 0, 20_001).astype(dtype),
                        np.array([0.0, -0.0, -np.inf], dtype)])
    got = np.empty_like(x)
    _kernels.exp_nonpositive(x, got)
    assert _ulps(got, np.exp(x.astype(np.longdouble)), dtype).max() <= EXP_ULP_BOUND[dtype]
    assert got[-1] == 0.0 and got[-2] == 1.0 and got[-3] == 1.0


def test_exp_is_exactly_zero_far_below_and_keeps_nan(path):
    for dtype in (np.float32, np.float64):
        x = np.array([np.nan, -1.0, np.nan, -200.0, -1e30, -800.0, -np.inf], dtype)
        got = np.empty_like(x)
        _kernels.exp_nonpositive(x, got)
        assert np.isnan(got[0]) and np.isnan(got[2])
        assert abs(got[1] - np.exp(-1.0)) < 1e-6
        assert (got[5 if dtype == np.float64 else 3:] == 0.0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_error_in_ulps(path, dtype):
    top = 30 if dtype == np.float32 else 300
    r = np.concatenate([np.logspace(-top - 10, top, 200_001).astype(dtype),
                        np.linspace(0, 10, 100_001, dtype=dtype),
                        np.array([0.0, np.finfo(dtype).max], dtype)])
    got = np.empty_like(r)
    _kernels.log1p_nonnegative(r, got)
    assert _ulps(got, np.log1p(r.astype(np.longdouble)), dtype).max() <= LOG1P_ULP_BOUND[dtype]
    assert got[-2] == 0.0


def test_log1p_of_inf_and_nan(path):
    for dtype in (np.float32, np.float64):
        r = np.array([np.inf, np.nan, 0.5], dtype)
        got = np.empty_like(r)
        _kernels.log1p_nonnegative(r, got)
        assert got[0] == np.inf and np.isnan(got[1])


def test_tails_of_every_length(path):
    # the partial loads and stores of the last vector, for every remainder
    for dtype in (np.float32, np.float64):
        for n in range(1, 40):
            x = -np.linspace(0, 5, n).astype(dtype)
            got = np.full(n + 8, 7.0, dtype)
            _kernels.exp_nonpositive(x, got[:n])
            np.testing.assert_allclose(got[:n], np.exp(x.astype(np.float64)), rtol=1e-6)
            assert (got[n:] == 7.0).all()
