"""The whole-call fast path of plain calls (``fastxent._kernels.fast_sparse``): it gives
what the general path gives, and declines (None) everything it does not handle, which
then takes the general path with its checks and messages."""

import numpy as np
import pytest

from fastxent import _kernels, losses, nn
from fastxent._core import REDUCTION_CODES


def _plain(rng, shape=(33, 10), dtype=np.float32):
    return ((rng.standard_normal(shape) * 3).astype(dtype),
            rng.integers(0, shape[-1], shape[:-1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (33, 10), (4, 5, 300)])
@pytest.mark.parametrize("return_grad", [False, True])
def test_nn_matches_the_general_path(rng, dtype, shape, return_grad):
    x, t = _plain(rng, shape, dtype)
    assert _kernels.fast_sparse(x, t, return_grad, -1, 1.0) is not None
    fast = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x,
                                                       return_grad=return_grad)
    general = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, n_threads=1,
                                                          return_grad=return_grad)
    for a, b in zip(fast if return_grad else [fast], general if return_grad else [general]):
        assert type(a) is type(b) and np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", list(REDUCTION_CODES))
@pytest.mark.parametrize("weights", [1.0, 2.5, 3])
def test_losses_match_the_general_path(rng, dtype, reduction, weights):
    x, t = _plain(rng, (3, 11, 10), dtype)
    assert _kernels.fast_sparse(x, t, True, REDUCTION_CODES[reduction], weights) is not None
    fast, fast_grad = losses.sparse_softmax_cross_entropy(t, x, weights, reduction=reduction,
                                                          return_grad=True)
    general, grad = losses.sparse_softmax_cross_entropy(t, x, weights, reduction=reduction,
                                                        return_grad=True, n_threads=1)
    assert type(fast) is type(general) and np.shape(fast) == np.shape(general)
    assert np.asarray(fast).dtype == np.asarray(general).dtype
    np.testing.assert_allclose(fast, general, rtol=4 * np.finfo(dtype).eps)  # order of a sum
    np.testing.assert_array_equal(fast_grad, grad)


def _declined_cases(rng):
    x, t = _plain(rng)
    bad = t.copy()
    bad[5] = 10

    class Sub(np.ndarray):
        pass

    return {
        "int32 labels": (x, t.astype(np.int32)),
        "a label out of range": (x, bad),
        "a negative label": (x, np.where(t == t[0], -1, t)),
        "float16 logits": (x.astype(np.float16), t),
        "Fortran-ordered logits": (np.asfortranarray(x), t),
        "strided labels": (x, np.repeat(t, 2)[::2]),
        "big-endian logits": (x.astype(">f4"), t),
        "a subclass": (x.view(Sub), t),
        "a list": (x.tolist(), t),
        "no classes": (np.zeros((33, 0), np.float32), t),
        "labels of another shape": (x, t[:-1]),
    }


@pytest.mark.parametrize("case", list(_declined_cases(np.random.default_rng(0))))
def test_everything_else_is_declined(rng, case):
    x, t = _declined_cases(rng)[case]
    assert _kernels.fast_sparse(x, t, True, -1, 1.0) is None


def test_a_zero_denominator_is_declined(rng):
    x, t = _plain(rng)
    assert _kernels.fast_sparse(x, t, False, REDUCTION_CODES["weighted_mean"], 0.0) is None
    assert losses.sparse_softmax_cross_entropy(t, x, 0.0, reduction="weighted_mean") == 0
