"""fastxent.nn.softmax_cross_entropy_with_logits (v2) and compat.v1 (SPEC section 3)."""

import warnings

import numpy as np
import pytest

import fastxent
import reference
from fastxent.compat.v1.nn import softmax_cross_entropy_with_logits as v1_xent
from fastxent import losses, nn
from fastxent.nn import softmax_cross_entropy_with_logits as dense_xent


def _distributions(rng, shape, dtype, zeros=0.3):
    y = rng.random(shape)
    y[rng.random(shape) < zeros] = 0.0
    y /= np.maximum(y.sum(axis=-1, keepdims=True), 1e-12)
    return y.astype(dtype)


def _random_case(rng, batch_shape, num_classes, dtype):
    logits = (rng.standard_normal(batch_shape + (num_classes,)) * 4).astype(dtype)
    return _distributions(rng, logits.shape, dtype), logits


# --- names and worked examples -----------------------------------------------------------

def test_v2_names_are_the_same_function():
    assert fastxent.nn.softmax_cross_entropy_with_logits_v2 is dense_xent
    assert fastxent.softmax_cross_entropy_with_logits is dense_xent
    assert fastxent.softmax_cross_entropy_with_logits_v2 is dense_xent
    assert (fastxent.sparse_softmax_cross_entropy_with_logits
            is fastxent.nn.sparse_softmax_cross_entropy_with_logits)


def test_tf_documentation_example():
    loss = dense_xent(labels=[[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]],
                      logits=np.array([[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]], np.float32))
    np.testing.assert_allclose(loss, [0.16984604, 0.82474494], rtol=1e-6)


def test_tf_test_suite_example():
    loss, grad = dense_xent(labels=[[0.0, 0, 0, 1], [0, 0.5, 0.5, 0]],
                            logits=[[1.0, 1, 1, 1], [1, 2, 3, 4]], return_grad=True)
    np.testing.assert_allclose(loss, [1.3862944, 1.9401897], rtol=1e-7)
    np.testing.assert_allclose(grad, [[0.25, 0.25, 0.25, -0.75],
                                      [0.0321, -0.4129, -0.2632, 0.6439]], atol=1e-4)


def test_extreme_logits_one_hot():
    loss, grad = dense_xent(labels=[0.0, 1.0, 0.0], logits=[1000.0, 0.0, -1000.0],
                            return_grad=True)
    assert loss == 1000.0
    np.testing.assert_array_equal(grad, [1.0, -1.0, 0.0])


# --- against the reference ----------------------------------------------------------------

@pytest.mark.parametrize("batch_shape", [(), (7,), (3, 5), (2, 3, 4)])
@pytest.mark.parametrize("num_classes", [1, 2, 10, 257])
def test_matches_reference(dtype, rng, batch_shape, num_classes):
    labels, logits = _random_case(rng, batch_shape, num_classes, dtype)
    loss, grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad, _ = reference.dense(labels, logits)
    assert np.shape(loss) == batch_shape and grad.shape == logits.shape
    assert loss.dtype == dtype and grad.dtype == dtype
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_any_axis(dtype, rng, axis):
    labels, logits = _random_case(rng, (3, 4), 5, dtype)  # classes last, then moved
    labels, logits = np.moveaxis(labels, -1, axis), np.moveaxis(logits, -1, axis)
    loss, grad, labels_grad = dense_xent(labels=labels, logits=logits, axis=axis,
                                         return_grad=True, return_labels_grad=True)
    want = reference.dense(np.moveaxis(labels, axis, -1), np.moveaxis(logits, axis, -1))
    assert loss.shape == (3, 4) and grad.shape == logits.shape
    reference.assert_loss_close(loss, want[0], dtype)
    reference.assert_grad_close(grad, np.moveaxis(want[1], -1, axis), dtype)
    reference.assert_loss_close(labels_grad, np.moveaxis(want[2], -1, axis), dtype)


def test_axis_out_of_range_is_an_axis_error():
    with pytest.raises(np.exceptions.AxisError):
        dense_xent(labels=np.zeros((2, 3)), logits=np.zeros((2, 3)), axis=2)
    with pytest.raises(np.exceptions.AxisError):
        dense_xent(labels=np.zeros((2, 3)), logits=np.zeros((2, 3)), axis=-3)


@pytest.mark.parametrize("label_dtype", [np.bool_, np.int8, np.uint8, np.int64, np.float16,
                                         np.float32, np.float64])
def test_any_real_label_dtype(rng, label_dtype):
    logits = rng.standard_normal((6, 4)).astype(np.float32)
    labels = np.eye(4)[rng.integers(0, 4, 6)].astype(label_dtype)
    loss, grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad, _ = reference.dense(labels.astype(np.float64), logits)
    reference.assert_loss_close(loss, want_loss, np.float32)
    reference.assert_grad_close(grad, want_grad, np.float32)


@pytest.mark.parametrize("labels_shape", [(5,), (1, 5), (3, 1), (1, 1), ()])
def test_labels_broadcast_to_logits(rng, labels_shape):
    logits = rng.standard_normal((3, 5))
    labels = rng.random(labels_shape)
    loss, grad, labels_grad = dense_xent(labels=labels, logits=logits, return_grad=True,
                                         return_labels_grad=True)
    want_loss, want_grad, want_labels_grad = reference.dense(labels, logits)
    reference.assert_loss_close(loss, want_loss, np.float64)
    reference.assert_grad_close(grad, want_grad, np.float64)
    # The labels' gradient sums over the axes along which labels were broadcast.
    assert labels_grad.shape == labels_shape
    lead = 2 - len(labels_shape)
    axes = tuple(range(lead)) + tuple(lead + k for k, d in enumerate(labels_shape) if d == 1)
    want = want_labels_grad.sum(axis=axes, keepdims=True).reshape(labels_shape)
    np.testing.assert_allclose(labels_grad, want, rtol=1e-12)


@pytest.mark.parametrize("labels_shape", [(3, 6), (2, 3, 5), (5, 3), (3, 2)])
def test_labels_that_do_not_broadcast_name_both_shapes(labels_shape):
    with pytest.raises(ValueError, match=r"labels shape .* logits shape \(3, 5\)"):
        dense_xent(labels=np.zeros(labels_shape), logits=np.zeros((3, 5)))


def test_non_contiguous_and_broadcast_views(rng):
    labels, logits = _random_case(rng, (4, 6), 7, np.float32)
    logits_view = np.repeat(logits, 2, axis=-1)[..., ::2][:, ::-2]
    labels_view = labels[:, ::-2]
    loss, grad = dense_xent(labels=labels_view, logits=logits_view, return_grad=True)
    want_loss, want_grad, _ = reference.dense(labels_view, logits_view)
    reference.assert_loss_close(loss, want_loss, np.float32)
    reference.assert_grad_close(grad, want_grad, np.float32)


def test_labels_not_summing_to_one_get_the_true_gradient():
    logits = np.array([[0.5, -1.0, 2.0]])
    labels = np.array([[0.5, 1.5, 1.0]])  # sums to 3
    loss, grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(grad, p * 3.0 - labels, rtol=1e-12)
    np.testing.assert_allclose(loss, -(labels * np.log(p)).sum(-1), rtol=1e-12)


def test_labels_gradient_is_minus_log_softmax():
    logits = np.array([[1.0, 2.0, 3.0]])
    _, labels_grad = dense_xent(labels=[[0.2, 0.3, 0.5]], logits=logits,
                                return_labels_grad=True)
    log_p = logits - np.log(np.exp(logits).sum())
    np.testing.assert_allclose(labels_grad, -log_p, rtol=1e-12)


def test_results_order_with_both_gradients():
    logits = np.array([[1.0, 2.0]])
    results = dense_xent(labels=[[1.0, 0.0]], logits=logits, return_grad=True,
                         return_labels_grad=True)
    assert len(results) == 3
    np.testing.assert_allclose(results[1], [[-1 + 1 / (1 + np.e), 1 - 1 / (1 + np.e)]])
    np.testing.assert_allclose(results[2], [[np.log1p(np.e), np.log1p(np.exp(-1))]])


# --- empty and classless ---------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda x: dense_xent(labels=np.zeros(x.shape), logits=x, return_grad=True),
    lambda x: nn.softmax_cross_entropy_with_logits(labels=np.zeros(x.shape).T, logits=x.T,
                                                   axis=0),
    lambda x: fastxent.compat.v1.nn.softmax_cross_entropy_with_logits(
        labels=np.zeros(x.shape), logits=x),
    lambda x: losses.softmax_cross_entropy(np.zeros(x.shape), x, return_grad=True),
], ids=["v2", "v2 axis 0", "v1", "losses"])
def test_no_classes_is_refused(dtype, call):
    """TensorFlow's current tests: "Must have at least one class, but got 0 classes"."""
    with pytest.raises(ValueError, match="at least one class, but got 0 classes"):
        call(np.zeros((3, 0), dtype))


def test_empty_batch():
    loss = dense_xent(labels=np.zeros((0, 3)), logits=np.zeros((0, 3), np.float32))
    assert loss.shape == (0,) and loss.dtype == np.float32


# --- special values (SPEC section 4) --------------------------------------------------------

def test_minus_inf_where_label_is_zero_costs_nothing():
    logits = np.array([[2.0, -np.inf, 0.0]])
    loss, grad = dense_xent(labels=[[0.5, 0.0, 0.5]], logits=logits, return_grad=True)
    want_loss, want_grad, _ = reference.dense([[0.5, 0.0, 0.5]], [[2.0, -1e300, 0.0]])
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, atol=1e-15)
    assert grad[0, 1] == 0.0


def test_minus_inf_where_label_is_not_zero_is_infinite():
    loss = dense_xent(labels=[[0.5, 0.5]], logits=[[0.0, -np.inf]])
    assert loss[0] == np.inf


def test_nan_or_plus_inf_or_all_minus_inf_rows_are_nan():
    logits = np.array([[0.0, np.nan], [np.inf, 0.0], [-np.inf, -np.inf], [0.0, 1.0]])
    loss, grad = dense_xent(labels=np.full((4, 2), 0.5), logits=logits, return_grad=True)
    assert np.isnan(loss[:3]).all() and np.isnan(grad[:3]).all()
    assert np.isfinite(loss[3]) and np.isfinite(grad[3]).all()


def test_nan_label_gives_nan_loss_and_nan_in_that_column():
    loss, grad = dense_xent(labels=[[0.5, np.nan, 0.5]], logits=[[0.0, 1.0, 2.0]],
                            return_grad=True)
    assert np.isnan(loss[0])
    assert np.isnan(grad[0, 1])
    # sum(labels) is NaN, so the true derivative p * sum(y) - y is NaN in every column.
    assert np.isnan(grad).all()


def test_float16_extremes_do_not_overflow():
    logits = np.array([[65504.0, 65000.0, -65504.0]], np.float16)
    loss, grad = dense_xent(labels=np.array([[1.0, 0.0, 0.0]], np.float16), logits=logits,
                            return_grad=True)
    assert loss.dtype == np.float16 and loss[0] == 0.0
    np.testing.assert_array_equal(grad, np.zeros((1, 3), np.float16))


# --- v1 ------------------------------------------------------------------------------------

def test_v1_warns_and_matches_v2(rng):
    labels, logits = _random_case(rng, (4,), 5, np.float32)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        loss, grad = v1_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    np.testing.assert_array_equal(loss, want_loss)
    np.testing.assert_array_equal(grad, want_grad)


def test_v1_dim_and_axis(rng):
    labels, logits = _random_case(rng, (4,), 5, np.float64)
    labels, logits = labels.T, logits.T
    want = dense_xent(labels=labels, logits=logits, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        np.testing.assert_array_equal(v1_xent(labels=labels, logits=logits, dim=0), want)
        np.testing.assert_array_equal(v1_xent(labels=labels, logits=logits, axis=0), want)
        np.testing.assert_array_equal(v1_xent(labels=labels, logits=logits, dim=0, axis=0), want)
        with pytest.raises(ValueError, match="dim .* axis"):
            v1_xent(labels=labels, logits=logits, dim=0, axis=1)


def test_v1_has_no_labels_gradient():
    with pytest.raises(TypeError):
        v1_xent(labels=[[1.0]], logits=[[0.0]], return_labels_grad=True)


def test_compat_v1_namespaces():
    assert fastxent.compat.v1.losses is fastxent.losses
    assert (fastxent.compat.v1.nn.sparse_softmax_cross_entropy_with_logits
            is fastxent.nn.sparse_softmax_cross_entropy_with_logits)


# --- a dominant class: the gradient keeps its relative precision (TensorFlow's tests) -----------

@pytest.fixture(params=["rows", "blocks"])
def dominant_rows(request):
    """One row, or 64 alike (rows in lanes for few classes)."""
    return 1 if request.param == "rows" else 64


def test_dominant_class_gradient_is_not_rounded_to_zero(path, dominant_rows):
    logits = np.tile([[37.42994775023705, 0.0]], (dominant_rows, 1))
    labels = np.tile([[1.0, 0.0]], (dominant_rows, 1))
    _, grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    np.testing.assert_allclose(grad[:, 0], -np.exp(-37.42994775023705) / (1 + np.exp(-37.42994775023705)),
                               rtol=1e-14, err_msg=path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_logit_at_40_among_zeros(path, dominant_rows, dtype):
    logits = np.zeros((dominant_rows, 10), dtype)
    logits[:, 3] = 40
    labels = np.zeros((dominant_rows, 10))
    labels[:, 3] = 1
    want = -9 * np.exp(-40.0) / (1 + 9 * np.exp(-40.0))
    _, grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    np.testing.assert_allclose(grad[:, 3], want, rtol=1e-6 if dtype == np.float32 else 1e-14,
                               err_msg=path)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15, err_msg=path)


def test_split_labels_at_a_dominant_logit_stay_below_a_half(path, dominant_rows):
    logits = np.tile([[37.42994775023705, 0.0]], (dominant_rows, 1))
    labels = np.full((dominant_rows, 2), 0.5)
    _, grad = dense_xent(labels=labels, logits=logits, return_grad=True)
    assert (grad[:, 0] < 0.5).all(), path


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_single_class_with_label_one_has_gradient_plus_zero(path, dtype):
    _, grad = dense_xent(labels=[[1.0]], logits=np.array([[3.0]], dtype), return_grad=True)
    assert grad[0, 0] == 0 and not np.signbit(grad[0, 0]), path
