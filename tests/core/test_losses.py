"""fastxent.losses: Reduction, compute_weighted_loss and the weighted losses (SPEC section 5)."""

import numpy as np
import pytest

import fastxent
import reference
from fastxent.losses import (
    Reduction,
    compute_weighted_loss,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)

ALL_WRONG_LOGITS = np.array([[10.0, 0, 0], [0, 10, 0], [0, 0, 10]])
ALL_WRONG_LABELS = np.array([2, 0, 1])
ROW_LOSS = 10.0 + np.log1p(2 * np.exp(-10.0))  # 10.0000908


# --- Reduction -----------------------------------------------------------------------------

def test_reduction_strings():
    assert Reduction.NONE == "none"
    assert Reduction.SUM == "weighted_sum"
    assert Reduction.MEAN == "weighted_mean"
    assert Reduction.SUM_OVER_BATCH_SIZE == "weighted_sum_over_batch_size"
    assert Reduction.SUM_BY_NONZERO_WEIGHTS == "weighted_sum_by_nonzero_weights"
    assert Reduction.SUM_OVER_NONZERO_WEIGHTS == Reduction.SUM_BY_NONZERO_WEIGHTS
    assert fastxent.Reduction is Reduction
    assert set(Reduction.all()) == {"none", "weighted_sum", "weighted_mean",
                                    "weighted_sum_over_batch_size",
                                    "weighted_sum_by_nonzero_weights"}


@pytest.mark.parametrize("key", ["average", "Mean", "", None, 3])
def test_unknown_reduction_is_a_value_error(key):
    with pytest.raises(ValueError, match="Invalid Reduction"):
        Reduction.validate(key)
    with pytest.raises(ValueError, match="Invalid Reduction"):
        compute_weighted_loss([1.0], reduction=key)


def test_validate_returns_the_key():
    for key in Reduction.all():
        assert Reduction.validate(key) == key


# --- compute_weighted_loss --------------------------------------------------------------

LOSSES = np.arange(24.0).reshape(3, 2, 4)
WEIGHTS = np.array([[[17, 0, 2, 5]], [[5, 31, 17, 5]], [[7, 3, 11, 5]]], np.float64)


@pytest.mark.parametrize("reduction, expected", [
    (Reduction.SUM, 2470.0),
    (Reduction.MEAN, 11.435185),
    (Reduction.SUM_BY_NONZERO_WEIGHTS, 112.27273),
    (Reduction.SUM_OVER_BATCH_SIZE, 102.91667),
])
def test_tf_test_suite_reductions(reduction, expected):
    result = compute_weighted_loss(LOSSES, WEIGHTS, reduction=reduction)
    np.testing.assert_allclose(result, expected, rtol=1e-7)
    assert np.ndim(result) == 0


def test_none_reduction_keeps_the_shape():
    result = compute_weighted_loss(LOSSES.astype(np.float32), WEIGHTS, reduction=Reduction.NONE)
    assert result.shape == LOSSES.shape and result.dtype == np.float32
    np.testing.assert_array_equal(result, (LOSSES * WEIGHTS).astype(np.float32))


@pytest.mark.parametrize("reduction", Reduction.all())
@pytest.mark.parametrize("weights", [2.5, np.array(0.5), np.ones((1, 1, 4)), WEIGHTS,
                                     np.array([[[1.0]], [[0.0]], [[2.0]]])])
def test_every_reduction_and_its_gradient_match_reference(reduction, weights):
    result, dlosses = compute_weighted_loss(LOSSES, weights, reduction=reduction,
                                            return_grad=True)
    want, want_grad = reference.weighted(LOSSES, weights, reduction)
    np.testing.assert_allclose(result, want, rtol=1e-12)
    np.testing.assert_allclose(dlosses, want_grad, rtol=1e-12)
    assert dlosses.shape == LOSSES.shape


@pytest.mark.parametrize("reduction", [Reduction.MEAN, Reduction.SUM_BY_NONZERO_WEIGHTS,
                                       Reduction.SUM_OVER_BATCH_SIZE])
def test_zero_denominator_gives_exactly_zero(reduction):
    losses = np.array([np.nan, np.inf, 3.0]) if reduction != Reduction.SUM_OVER_BATCH_SIZE \
        else np.zeros(0)
    weights = 0.0 if losses.size else 1.0
    result, dlosses = compute_weighted_loss(losses, weights, reduction=reduction,
                                            return_grad=True)
    assert result == 0.0
    np.testing.assert_array_equal(dlosses, np.zeros_like(losses))


def test_nan_weights_count_as_present():
    result = compute_weighted_loss([1.0, 2.0], [np.nan, 0.0])
    assert np.isnan(result)


def test_sums_are_float64_whatever_the_dtype():
    losses = np.full(2**20, 0.1, np.float32)
    exact = 2**20 * float(np.float32(0.1))
    result = compute_weighted_loss(losses, reduction=Reduction.SUM)
    assert result.dtype == np.float32
    assert result == np.float32(exact)


@pytest.mark.parametrize("weights_shape", [(3,), (2, 4), (1, 2, 4, 1), (3, 3, 4), (2, 2, 4)])
def test_weights_that_do_not_broadcast(weights_shape):
    with pytest.raises(ValueError, match=r"weights can not be broadcast to values.*"
                                         r"\(3, 2, 4\).*" + str(weights_shape).replace("(", r"\(")
                                         .replace(")", r"\)")):
        compute_weighted_loss(LOSSES, np.ones(weights_shape))


def test_weights_none_is_a_value_error():
    with pytest.raises(ValueError, match="weights"):
        compute_weighted_loss(LOSSES, None)


# --- sparse_softmax_cross_entropy -------------------------------------------------------------

@pytest.mark.parametrize("weights, expected", [
    (1.0, ROW_LOSS),
    (2.3, 2.3 * ROW_LOSS),
    ([1.2, 3.4, 5.6], (1.2 + 3.4 + 5.6) / 3 * ROW_LOSS),
    ([[1.2], [3.4], [5.6]], (1.2 + 3.4 + 5.6) / 3 * ROW_LOSS),
    ([1.2, 0.0, 0.0], 1.2 * ROW_LOSS),
    ([0.0, 0.0, 0.0], 0.0),
])
def test_tf_test_suite_sparse_examples(weights, expected):
    result = sparse_softmax_cross_entropy(ALL_WRONG_LABELS, ALL_WRONG_LOGITS, weights)
    np.testing.assert_allclose(result, expected, rtol=1e-12)
    np.testing.assert_allclose(result, round(expected, 1), rtol=1e-4)  # 10.0, 23.0, 34.0, 12.0


def test_sparse_labels_with_a_trailing_one_are_squeezed():
    result = sparse_softmax_cross_entropy(ALL_WRONG_LABELS[:, None], ALL_WRONG_LOGITS)
    np.testing.assert_allclose(result, ROW_LOSS, rtol=1e-12)


@pytest.mark.parametrize("reduction", Reduction.all())
@pytest.mark.parametrize("weights", [1.0, 0.25, [0.5, 0.0, 2.0, 1.0], [[0.5], [0.0], [2.0], [1.0]]])
def test_sparse_reductions_and_gradient(dtype, rng, reduction, weights):
    logits = (rng.standard_normal((4, 6)) * 3).astype(dtype)
    labels = rng.integers(0, 6, 4)
    result, grad = sparse_softmax_cross_entropy(labels, logits, weights, reduction=reduction,
                                                return_grad=True)
    row_loss, row_grad = reference.sparse(labels, logits)
    w = np.asarray(weights, np.float64).reshape(-1) if np.ndim(weights) else weights
    want, row_factor = reference.weighted(row_loss, w, reduction)
    reference.assert_loss_close(result, want, dtype)
    reference.assert_grad_close(grad, row_grad * np.asarray(row_factor)[:, None], dtype,
                                scale=row_factor)
    assert np.asarray(result).dtype == dtype
    assert np.shape(result) == ((4,) if reduction == Reduction.NONE else ())


def test_sparse_label_range_is_checked():
    with pytest.raises(fastxent.InvalidArgumentError, match="value of 3"):
        sparse_softmax_cross_entropy([0, 3], np.zeros((2, 3)))


def test_sparse_zero_weights_give_zero_gradient_even_for_nan_logits():
    logits = np.array([[np.nan, 0.0], [1.0, 0.0]])
    result, grad = sparse_softmax_cross_entropy([0, 1], logits, weights=0.0, return_grad=True)
    assert result == 0.0
    np.testing.assert_array_equal(grad, np.zeros((2, 2)))


# --- softmax_cross_entropy ------------------------------------------------------------------

def test_tf_docstring_example_with_label_smoothing():
    result = softmax_cross_entropy([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]],
                                   weights=[0.3, 0.7], label_smoothing=0.2)
    np.testing.assert_allclose(result, 0.57618, atol=5e-6)


def test_label_smoothing_example():
    result = softmax_cross_entropy([[1, 0, 0]], [[100.0, -100.0, -100.0]], label_smoothing=0.1)
    np.testing.assert_allclose(result, 400 / 30, rtol=1e-12)  # 13.333


def test_tf_test_suite_dense_examples():
    onehot = np.eye(3)[ALL_WRONG_LABELS]
    np.testing.assert_allclose(softmax_cross_entropy(onehot, ALL_WRONG_LOGITS, 2.3),
                               2.3 * ROW_LOSS, rtol=1e-12)
    np.testing.assert_allclose(softmax_cross_entropy(onehot, ALL_WRONG_LOGITS, [1.2, 0, 0]),
                               1.2 * ROW_LOSS, rtol=1e-12)


@pytest.mark.parametrize("reduction", Reduction.all())
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2, 1.0])
def test_dense_reductions_smoothing_and_gradient(dtype, rng, reduction, label_smoothing):
    logits = (rng.standard_normal((2, 3, 5)) * 3).astype(dtype)
    onehot = np.eye(5)[rng.integers(0, 5, (2, 3))]
    weights = np.array([[1.0, 0.0, 2.0]])
    result, grad = softmax_cross_entropy(onehot, logits, weights, label_smoothing,
                                         reduction=reduction, return_grad=True)
    row_loss, row_grad, _ = reference.dense(onehot, logits, 1 - label_smoothing,
                                            label_smoothing / 5)
    want, row_factor = reference.weighted(row_loss, weights, reduction)
    reference.assert_loss_close(result, want, dtype)
    reference.assert_grad_close(grad, row_grad * np.asarray(row_factor)[..., None], dtype,
                                scale=row_factor)


def test_onehot_labels_must_have_the_logits_shape():
    with pytest.raises(ValueError, match=r"onehot_labels shape \(3,\).*\(2, 3\)"):
        softmax_cross_entropy(np.ones(3), np.zeros((2, 3)))


@pytest.mark.parametrize("eps", [-0.1, 1.5, np.nan])
def test_label_smoothing_outside_unit_interval(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        softmax_cross_entropy(np.eye(3), np.zeros((3, 3)), label_smoothing=eps)


def test_positional_arguments_are_allowed_for_losses():
    a = softmax_cross_entropy(np.eye(3), np.zeros((3, 3)), 1.0, 0.0, None, None, "weighted_sum")
    np.testing.assert_allclose(a, 3 * np.log(3))


@pytest.mark.parametrize("name, key", [("mean", Reduction.MEAN), ("sum", Reduction.SUM),
                                       ("none", Reduction.NONE),
                                       ("sum_over_batch_size", Reduction.SUM_OVER_BATCH_SIZE),
                                       ("sum_by_nonzero_weights",
                                        Reduction.SUM_BY_NONZERO_WEIGHTS)])
def test_one_reduction_vocabulary(rng, name, key):
    """The short names (PyTorch's and Keras's) are the Reductions they say."""
    assert Reduction.validate(name) == key
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    weights = rng.random(6)
    for short, full in ((name, key),):
        np.testing.assert_array_equal(
            fastxent.losses.sparse_softmax_cross_entropy(labels, logits, weights=weights,
                                                         reduction=short),
            fastxent.losses.sparse_softmax_cross_entropy(labels, logits, weights=weights,
                                                         reduction=full))
