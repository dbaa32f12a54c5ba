"""The whole-call fast path (``fastxent._backends._kernels.fast_sparse``): the common ways of calling
the sparse functions take it, it gives what the general path gives, and it declines (None)
everything it does not handle, which then takes the general path with its checks and
messages. ``validate=True`` sends a call down the general path (on the CPU it checks the
labels as the default does)."""

import numpy as np
import pytest

import reference
from fastxent import losses, nn
from fastxent._backends import _kernels
from fastxent._core.reduce import REDUCTION_CODES

LOGIT_DTYPES = [np.float16, np.float32, np.float64]
if reference.ml_dtypes is not None:
    LOGIT_DTYPES.append(reference.ml_dtypes.bfloat16)
LABEL_DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64, np.uint64]


def _plain(rng, shape=(33, 10), dtype=np.float32, labels_dtype=np.int64):
    return ((rng.standard_normal(shape) * 3).astype(dtype),
            rng.integers(0, shape[-1], shape[:-1]).astype(labels_dtype))


def _assert_same(fast, general):
    for a, b in zip(fast if isinstance(fast, tuple) else [fast],
                    general if isinstance(general, tuple) else [general]):
        assert type(a) is type(b) and np.shape(a) == np.shape(b)
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))


@pytest.mark.parametrize("dtype", LOGIT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(7,), (33, 10), (4, 5, 300)])
@pytest.mark.parametrize("return_grad", [False, True])
def test_nn_matches_the_general_path(rng, dtype, shape, return_grad):
    x, t = _plain(rng, shape, dtype)
    assert _kernels.fast_sparse(x, t, return_grad, -1, 1.0) is not None
    fast = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x,
                                                       return_grad=return_grad)
    general = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, validate=True,
                                                          return_grad=return_grad)
    _assert_same(fast, general)


@pytest.mark.parametrize("labels_dtype", LABEL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_integer_label_type_takes_the_fast_path(rng, labels_dtype):
    x, t = _plain(rng, labels_dtype=labels_dtype)
    assert _kernels.fast_sparse(x, t, True, -1, 1.0) is not None
    _assert_same(nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True),
                 nn.sparse_softmax_cross_entropy_with_logits(labels=t.astype(np.int64), logits=x,
                                                             return_grad=True, validate=True))


def _call_forms(x, t):
    """The common ways of calling (name: keyword arguments of nn's sparse function)."""
    return {
        "grad_out": dict(return_grad=True, grad_out=np.empty_like(x)),
        "grad_out=logits": dict(return_grad=True, grad_out=x.copy()),
        "out": dict(out=np.empty(t.shape, x.dtype)),
        "out and grad_out": dict(return_grad=True, out=np.empty(t.shape, x.dtype),
                                 grad_out=np.empty_like(x)),
        "n_threads=1": dict(return_grad=True, n_threads=1),
        "n_threads=2": dict(return_grad=True, n_threads=2),
        "n_threads=-1": dict(return_grad=True, n_threads=-1),
        "label_smoothing=0": dict(label_smoothing=0),
    }


@pytest.mark.parametrize("form", list(_call_forms(*_plain(np.random.default_rng(0)))))
def test_call_forms_take_the_fast_path(rng, form):
    x, t = _plain(rng)
    kwargs = _call_forms(x, t)[form]
    if form == "grad_out=logits":
        x = kwargs["grad_out"]
    assert _kernels.fast_sparse(x, t, kwargs.get("return_grad", False), -1, 1.0,
                                kwargs.get("out"), kwargs.get("grad_out"),
                                kwargs.get("n_threads")) is not None


@pytest.mark.parametrize("form", list(_call_forms(*_plain(np.random.default_rng(0)))))
def test_call_forms_give_the_general_paths_results(rng, form):
    x, t = _plain(rng)
    kwargs = _call_forms(x, t)[form]
    want = nn.sparse_softmax_cross_entropy_with_logits(
        labels=t, logits=x, validate=True,
        **{k: v for k, v in kwargs.items() if k not in ("out", "grad_out")})
    if form == "grad_out=logits":
        kwargs["grad_out"] = x = x.copy()
    got = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, **kwargs)
    _assert_same(got, want)
    if "out" in kwargs:   # the results are the caller's arrays
        assert (got[0] if isinstance(got, tuple) else got) is kwargs["out"]
    if "grad_out" in kwargs:
        assert got[1] is kwargs["grad_out"]


WEIGHTS = {
    "1.0": lambda n, rng: 1.0,
    "2.5": lambda n, rng: 2.5,
    "int 3": lambda n, rng: 3,
    "0.1": lambda n, rng: 0.1,
    "float64 array": lambda n, rng: rng.random(n),
    "float32 array": lambda n, rng: rng.random(n).astype(np.float32),
    "int array with zeros": lambda n, rng: rng.integers(0, 3, n),
}


@pytest.mark.parametrize("dtype", LOGIT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", list(REDUCTION_CODES))
@pytest.mark.parametrize("weights", list(WEIGHTS))
def test_losses_match_the_general_path(rng, dtype, reduction, weights):
    x, t = _plain(rng, (3, 11, 10), dtype)
    w = WEIGHTS[weights](t.shape, rng)
    if not np.any(np.asarray(w) != 0):
        return
    assert _kernels.fast_sparse(x, t, True, REDUCTION_CODES[reduction], w) is not None
    fast, fast_grad = losses.sparse_softmax_cross_entropy(t, x, w, reduction=reduction,
                                                          return_grad=True)
    general, grad = losses.sparse_softmax_cross_entropy(t, x, w, reduction=reduction,
                                                        return_grad=True, validate=True)
    assert type(fast) is type(general) and np.shape(fast) == np.shape(general)
    assert np.asarray(fast).dtype == np.asarray(general).dtype
    eps = np.finfo(np.float16 if np.dtype(dtype).itemsize == 2 else dtype).eps
    np.testing.assert_allclose(np.asarray(fast, np.float64), np.asarray(general, np.float64),
                               rtol=4 * eps)   # the order of a sum
    np.testing.assert_array_equal(np.asarray(fast_grad, np.float64), np.asarray(grad, np.float64))


@pytest.mark.parametrize("rows", [5, 100, 129, 1000, 20001])
def test_a_weighted_mean_divides_by_numpys_sum_of_the_weights(rng, rows):
    # the denominator is NumPy's pairwise sum, so the gradient is the general path's bit for bit
    x, t = _plain(rng, (rows, 4))
    w = rng.random(rows) * 10.0 ** rng.uniform(-3, 3, rows)
    fast = losses.sparse_softmax_cross_entropy(t, x, w, reduction="mean", return_grad=True)
    general = losses.sparse_softmax_cross_entropy(t, x, w, reduction="mean", return_grad=True,
                                                  validate=True)
    np.testing.assert_array_equal(fast[1], general[1])


def test_losses_outputs_take_the_fast_path(rng):
    x, t = _plain(rng)
    out, grad_out = np.empty((), np.float32), np.empty_like(x)
    assert _kernels.fast_sparse(x, t, True, REDUCTION_CODES["mean"], 1.0, out, grad_out) is not None
    value, grad = losses.sparse_softmax_cross_entropy(t, x, reduction="mean", return_grad=True,
                                                      out=out, grad_out=grad_out)
    assert value is out and grad is grad_out
    want = losses.sparse_softmax_cross_entropy(t, x, reduction="mean", return_grad=True,
                                               validate=True)
    np.testing.assert_allclose(out, want[0], rtol=4e-7)
    np.testing.assert_array_equal(grad_out, want[1])
    rows_out = np.empty(t.shape, np.float32)
    assert losses.sparse_softmax_cross_entropy(t, x, rng.random(33), reduction="none",
                                               out=rows_out) is rows_out


def _declined_cases(rng):
    x, t = _plain(rng)
    bad = t.copy()
    bad[5] = 10

    class Sub(np.ndarray):
        pass

    return {
        "a label out of range": ((x, bad), {}),
        "a negative label": ((x, np.where(t == t[0], -1, t)), {}),
        "a uint64 label past int64": ((x, np.where(t == t[0], 2**63, t).astype(np.uint64)), {}),
        "bool labels": ((x, t % 2 == 0), {}),
        "float labels": ((x, t.astype(np.float32)), {}),
        "Fortran-ordered logits": ((np.asfortranarray(x), t), {}),
        "strided labels": ((x, np.repeat(t, 2)[::2]), {}),
        "big-endian logits": ((x.astype(">f4"), t), {}),
        "big-endian labels": ((x, t.astype(">i8")), {}),
        "a subclass": ((x.view(Sub), t), {}),
        "a list": ((x.tolist(), t), {}),
        "no classes": ((np.zeros((33, 0), np.float32), t), {}),
        "labels of another shape": ((x, t[:-1]), {}),
        "grad_out over part of the logits": ((x, t), {"grad_out": x.reshape(-1)[1:].__array__()}),
        "grad_out read-only": ((x, t), {"grad_out": np.broadcast_to(x, x.shape)}),
        "grad_out of another dtype": ((x, t), {"grad_out": np.empty(x.shape, np.float64)}),
        "out overlapping the logits": ((x, t), {"out": x[:, 0]}),
        "out of another dtype": ((x, t), {"out": np.empty(t.shape, np.float64)}),
        "out of another shape": ((x, t), {"out": np.empty(t.shape + (1,), np.float32)}),
        "n_threads=0": ((x, t), {"n_threads": 0}),
        "n_threads=True": ((x, t), {"n_threads": True}),
        "n_threads=1.0": ((x, t), {"n_threads": 1.0}),
    }


@pytest.mark.parametrize("case", list(_declined_cases(np.random.default_rng(0))))
def test_everything_else_is_declined(rng, case):
    (x, t), kwargs = _declined_cases(rng)[case]
    if kwargs.get("grad_out") is not None and kwargs["grad_out"].shape != np.shape(x):
        kwargs["grad_out"] = np.empty(np.shape(x), np.float32)[:, ::-1]   # not contiguous
    assert _kernels.fast_sparse(x, t, True, -1, 1.0, kwargs.get("out"), kwargs.get("grad_out"),
                                kwargs.get("n_threads")) is None


@pytest.mark.parametrize("weights", [[1.0] * 33, np.ones(32), np.ones((33, 1)), np.ones(33) > 0])
def test_weights_other_than_a_number_or_an_array_of_the_labels_shape_are_declined(rng, weights):
    x, t = _plain(rng)
    assert _kernels.fast_sparse(x, t, True, REDUCTION_CODES["mean"], weights) is None


def test_a_zero_denominator_is_declined(rng):
    x, t = _plain(rng)
    assert _kernels.fast_sparse(x, t, False, REDUCTION_CODES["weighted_mean"], 0.0) is None
    assert _kernels.fast_sparse(x, t, False, REDUCTION_CODES["mean"], np.zeros(33)) is None
    assert losses.sparse_softmax_cross_entropy(t, x, 0.0, reduction="weighted_mean") == 0
