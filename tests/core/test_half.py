"""The kernels' own float16 conversions agree with NumPy's, bit for bit."""

import numpy as np

from fastxent._backends import _kernels


def test_every_half_converts_to_float_exactly():
    bits = np.arange(2**16, dtype=np.uint16)
    got = np.empty(2**16, np.float32)
    _kernels.half_to_float(bits, got)
    want = bits.view(np.float16).astype(np.float32)
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(got.view(np.uint32)[finite], want.view(np.uint32)[finite])
    assert np.isnan(got[~finite]).all()


def test_floats_round_to_half_like_numpy():
    rng = np.random.default_rng(7)
    # Every float32 exponent, random mantissas, plus the halfway cases around every half.
    random_bits = rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)
    halves = halves[np.isfinite(halves)]
    next_up = np.nextafter(halves, np.float32(np.inf))
    values = np.concatenate([
        random_bits.view(np.float32), halves, next_up, (halves + np.nextafter(halves, np.inf)) / 2,
        np.array([65504, 65519.996, 65520, 1e6, np.inf, -np.inf, 2**-25, 2**-24, 3 * 2**-26,
                  -0.0, 0.0, np.nan], np.float32)])
    got = np.empty(values.size, np.uint16)
    _kernels.float_to_half(np.ascontiguousarray(values, np.float32), got)
    with np.errstate(over="ignore"):
        want = values.astype(np.float16)
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(got[finite], want.view(np.uint16)[finite])
    assert np.isnan(got.view(np.float16)[~finite]).all()
