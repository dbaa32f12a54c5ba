"""Every gradient against central finite differences of the function itself (float64)."""

import numpy as np
import pytest

from fastxent import losses, nn
from fastxent.compat.v1.nn import softmax_cross_entropy_with_logits as v1_xent

STEP = 1e-6


def numeric_gradient(f, x):
    """d sum(f(x)) / dx by central differences."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += STEP
        up = np.sum(f(shifted))
        shifted[index] -= 2 * STEP
        down = np.sum(f(shifted))
        grad[index] = (up - down) / (2 * STEP)
    return grad


@pytest.fixture
def logits(rng):
    return rng.standard_normal((3, 2, 4)) * 2


@pytest.fixture
def distributions(rng):
    y = rng.random((3, 2, 4))
    return y / y.sum(-1, keepdims=True)


def check(f, x, analytic):
    np.testing.assert_allclose(analytic, numeric_gradient(f, x), rtol=1e-6, atol=1e-8)


def test_sparse(rng, logits):
    labels = rng.integers(0, 4, (3, 2))
    f = lambda x: nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x)
    _, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                          return_grad=True)
    check(f, logits, grad)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_dense_logits_and_labels(logits, distributions, axis):
    y = np.moveaxis(distributions, -1, axis) * 1.7  # not summing to one: the true gradient
    x = np.moveaxis(logits, -1, axis)
    _, grad, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=y, logits=x, axis=axis, return_grad=True, return_labels_grad=True)
    check(lambda v: nn.softmax_cross_entropy_with_logits(labels=y, logits=v, axis=axis), x, grad)
    check(lambda v: nn.softmax_cross_entropy_with_logits(labels=v, logits=x, axis=axis), y,
          labels_grad)


def test_dense_labels_gradient_with_broadcast_labels(logits, rng):
    y = rng.random((1, 2, 4))
    _, labels_grad = nn.softmax_cross_entropy_with_logits(labels=y, logits=logits,
                                                          return_labels_grad=True)
    check(lambda v: nn.softmax_cross_entropy_with_logits(labels=v, logits=logits), y, labels_grad)


def test_v1(logits, distributions):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _, grad = v1_xent(labels=distributions, logits=logits, return_grad=True)
        check(lambda v: v1_xent(labels=distributions, logits=v), logits, grad)


@pytest.mark.parametrize("reduction", losses.Reduction.all())
@pytest.mark.parametrize("weights", [0.7, [[1.0, 0.0]], [[0.5, 1.0], [0.0, 2.0], [1.0, 3.0]]])
def test_sparse_losses(rng, logits, reduction, weights):
    labels = rng.integers(0, 4, (3, 2))
    f = lambda x: losses.sparse_softmax_cross_entropy(labels, x, weights, reduction=reduction)
    _, grad = losses.sparse_softmax_cross_entropy(labels, logits, weights, reduction=reduction,
                                                  return_grad=True)
    check(f, logits, grad)


@pytest.mark.parametrize("reduction", losses.Reduction.all())
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_dense_losses(rng, logits, reduction, label_smoothing):
    onehot = np.eye(4)[rng.integers(0, 4, (3, 2))]
    weights = [[2.0, 0.5]]
    f = lambda x: losses.softmax_cross_entropy(onehot, x, weights, label_smoothing,
                                               reduction=reduction)
    _, grad = losses.softmax_cross_entropy(onehot, logits, weights, label_smoothing,
                                           reduction=reduction, return_grad=True)
    check(f, logits, grad)


@pytest.mark.parametrize("reduction", losses.Reduction.all())
def test_compute_weighted_loss(rng, reduction):
    values = rng.random((3, 4))
    weights = [[1.0, 0.0, 2.0, 0.5]]
    f = lambda v: losses.compute_weighted_loss(v, weights, reduction=reduction)
    _, grad = losses.compute_weighted_loss(values, weights, reduction=reduction, return_grad=True)
    check(f, values, grad)
