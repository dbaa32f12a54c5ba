"""SPEC section 6: every error, its exception type, and a message naming the argument."""

import numpy as np
import pytest

import fastxent
from fastxent import losses, nn
from fastxent.compat.v1 import nn as v1_nn

DENSE = [nn.softmax_cross_entropy_with_logits, v1_nn.softmax_cross_entropy_with_logits]
NN = [nn.sparse_softmax_cross_entropy_with_logits, *DENSE]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("function", NN)
def test_positional_call_is_a_type_error(function):
    with pytest.raises(TypeError):
        function([0], [[0.0, 1.0]])


@pytest.mark.parametrize("function", NN)
@pytest.mark.parametrize("missing", ["labels", "logits"])
def test_missing_or_none_arguments_are_value_errors(function, missing):
    labels = [0] if function is nn.sparse_softmax_cross_entropy_with_logits else [[1.0, 0.0]]
    kwargs = {"labels": labels, "logits": [[0.0, 1.0]]}
    with pytest.raises(ValueError, match=f"{missing} must be given"):
        function(**{**kwargs, missing: None})
    del kwargs[missing]
    with pytest.raises(ValueError, match=f"{missing} must be given"):
        function(**kwargs)


@pytest.mark.parametrize("function", [losses.softmax_cross_entropy,
                                      losses.sparse_softmax_cross_entropy])
def test_losses_none_arguments_are_value_errors(function):
    labels = [0] if function is losses.sparse_softmax_cross_entropy else [[1.0, 0.0]]
    with pytest.raises(ValueError, match="logits must be given"):
        function(labels, None)
    with pytest.raises(ValueError, match="labels must be given"):
        function(None, [[0.0, 1.0]])
    with pytest.raises(ValueError, match="weights must be given"):
        function(labels, [[0.0, 1.0]], weights=None)


@pytest.mark.parametrize("function", NN)
def test_zero_dimensional_logits(function):
    with pytest.raises(ValueError, match="logits must have rank >= 1"):
        function(labels=0, logits=1.0)


@pytest.mark.parametrize("labels_shape, logits_shape", [
    ((2, 1), (2, 3)), ((3,), (2, 3)), ((), (2, 3)), ((2, 3), (2, 3)), ((4, 2), (4, 3, 2))])
def test_sparse_label_shape_mismatch_names_both_shapes(labels_shape, logits_shape):
    with pytest.raises(ValueError, match=rf"labels shape .*{labels_shape[0] if labels_shape else ''}"
                                         rf".*logits shape \({logits_shape[0]}, "):
        nn.sparse_softmax_cross_entropy_with_logits(labels=np.zeros(labels_shape, int),
                                                    logits=np.zeros(logits_shape))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64, object,
                                   np.longdouble, "U3", "M8[s]"])
@pytest.mark.parametrize("function", NN)
def test_non_float_logits_are_type_errors(function, dtype):
    logits = np.zeros((2, 3)).astype(dtype) if dtype != "M8[s]" else np.zeros((2, 3), dtype)
    labels = [0, 1] if function is nn.sparse_softmax_cross_entropy_with_logits else np.eye(3)[:2]
    with pytest.raises(TypeError, match="logits must be float16, bfloat16, float32 or float64"):
        function(labels=labels, logits=logits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_, np.complex128, object])
def test_non_integer_sparse_labels_are_type_errors(dtype):
    with pytest.raises(TypeError, match="labels must be an integer array"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=np.zeros(2, dtype),
                                                    logits=np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [np.complex128, object, "U3"])
@pytest.mark.parametrize("function", DENSE)
def test_non_real_dense_labels_are_type_errors(function, dtype):
    with pytest.raises(TypeError, match="labels must be a real numeric array"):
        function(labels=np.zeros((2, 3)).astype(dtype), logits=np.zeros((2, 3)))


def test_label_out_of_range_on_the_cpu():
    with pytest.raises(fastxent.InvalidArgumentError, match=r"\[0, 3\)"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=[3], logits=[[0.0, 0.0, 0.0]])


def test_no_classes_for_sparse():
    with pytest.raises(ValueError, match="at least one class"):
        losses.sparse_softmax_cross_entropy(np.zeros(2, int), np.zeros((2, 0)))


def test_unknown_reduction():
    with pytest.raises(ValueError, match="Invalid Reduction"):
        losses.softmax_cross_entropy(np.eye(2), np.zeros((2, 2)), reduction="average")


@pytest.mark.parametrize("n_threads, error", [(0, ValueError), (-2, ValueError),
                                              (1.5, TypeError), ("2", TypeError)])
def test_bad_n_threads(n_threads, error):
    with pytest.raises(error, match="n_threads"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=[[0.0]],
                                                    n_threads=n_threads)


CALLS = [
    lambda x, t: fastxent.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x),
    lambda x, t: fastxent.losses.sparse_softmax_cross_entropy(t, x),
    lambda x, t: fastxent.nn.softmax_cross_entropy_with_logits(labels=np.eye(3)[t], logits=x),
    lambda x, t: fastxent.linear_cross_entropy(x, np.zeros((3, 3)), t),
]


@pytest.mark.parametrize("call", CALLS)
def test_masked_arrays_are_refused_not_unmasked(call):
    x = np.ma.masked_array(np.zeros((4, 3)), mask=np.eye(4, 3, dtype=bool))
    with pytest.raises(TypeError, match="masked array; fastxent does not read masks"):
        call(x, np.zeros(4, int))


def _torch(a):
    return pytest.importorskip("torch").from_numpy(np.asarray(a))


def _jax(a):
    return pytest.importorskip("jax").numpy.asarray(a)


def _pandas(a):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(a) if np.ndim(a) == 2 else pd.Series(a)


@pytest.mark.parametrize("call, x_name, dense_labels", [
    (CALLS[0], "logits", False), (CALLS[1], "logits", False),
    (lambda x, y: fastxent.nn.softmax_cross_entropy_with_logits(labels=y, logits=x), "logits",
     True),
    (CALLS[3], "X", False)])
@pytest.mark.parametrize("convert, kind, conversion", [
    (_torch, "a torch.Tensor", "logits.numpy()"),
    (_jax, "a JAX array", "np.asarray(logits)"),
    (_pandas, "a pandas object", "logits.to_numpy()"),
])
def test_other_libraries_arrays_are_refused_naming_the_conversion(
        call, x_name, dense_labels, convert, kind, conversion):
    """Not silently converted to NumPy (results of another kind than the input's)."""
    labels = np.eye(3)[[0, 1, 2, 0]] if dense_labels else np.array([0, 1, 2, 0])
    with pytest.raises(TypeError) as error:
        call(convert(np.zeros((4, 3))), labels)
    assert f"{x_name} is {kind}" in str(error.value)
    assert conversion.replace("logits", x_name) in str(error.value)
    with pytest.raises(TypeError, match=f"labels is {kind}"):
        call(np.zeros((4, 3)), convert(labels))


def test_n_threads_minus_one_is_all_cores(rng):
    logits, labels = rng.standard_normal((50, 7)), rng.integers(0, 7, 50)
    for call in (lambda n: fastxent.nn.sparse_softmax_cross_entropy_with_logits(
                     labels=labels, logits=logits, n_threads=n),
                 lambda n: fastxent.losses.sparse_softmax_cross_entropy(labels, logits,
                                                                        n_threads=n),
                 lambda n: fastxent.linear_cross_entropy(logits, np.eye(7), labels,
                                                         n_threads=n)[0]):
        np.testing.assert_array_equal(call(-1), call(None))
    with pytest.raises(ValueError, match="-1 .all cores."):
        fastxent.losses.sparse_softmax_cross_entropy(labels, logits, n_threads=-2)
