"""Cross-check against torch.nn.functional.cross_entropy (skipped when torch is absent)."""

import numpy as np
import pytest

from fastxent import losses, nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOLERANCE = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-11, atol=1e-14)}


def _torch_loss_and_grad(logits, target, **kwargs):
    x = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor(target), **kwargs)
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (16, 1000), (3, 5, 7)])
def test_sparse_matches_torch(rng, dtype, shape):
    logits = (rng.standard_normal(shape) * 5).astype(dtype)
    labels = rng.integers(0, shape[-1], shape[:-1])
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                             return_grad=True)
    # torch puts the class axis second
    x = np.moveaxis(logits, -1, 1)
    want_loss, want_grad = _torch_loss_and_grad(x, labels, reduction="none")
    np.testing.assert_allclose(loss, want_loss, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad, np.moveaxis(want_grad, 1, -1), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_matches_torch_probability_targets(rng, dtype):
    logits = (rng.standard_normal((32, 50)) * 5).astype(dtype)
    target = rng.random((32, 50)).astype(dtype)
    target /= target.sum(-1, keepdims=True)
    loss, grad = nn.softmax_cross_entropy_with_logits(labels=target, logits=logits,
                                                      return_grad=True)
    want_loss, want_grad = _torch_loss_and_grad(logits, target, reduction="none")
    np.testing.assert_allclose(loss, want_loss, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad, want_grad, **TOLERANCE[dtype])


def test_label_smoothing_and_mean_match_torch(rng):
    logits = rng.standard_normal((40, 12)) * 3
    labels = rng.integers(0, 12, 40)
    result, grad = losses.softmax_cross_entropy(np.eye(12)[labels], logits, label_smoothing=0.15,
                                                reduction=losses.Reduction.MEAN,
                                                return_grad=True)
    want, want_grad = _torch_loss_and_grad(logits, labels, label_smoothing=0.15)
    np.testing.assert_allclose(result, want, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-15)


def test_sparse_mean_matches_torch(rng):
    logits = rng.standard_normal((40, 12)).astype(np.float32)
    labels = rng.integers(0, 12, 40)
    result, grad = losses.sparse_softmax_cross_entropy(labels, logits,
                                                       reduction=losses.Reduction.MEAN,
                                                       return_grad=True)
    want, want_grad = _torch_loss_and_grad(logits, labels)
    np.testing.assert_allclose(result, want, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, atol=1e-8)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_probability_targets_with_class_weights_match_torch(rng, label_smoothing):
    """``F.cross_entropy(input, probs, weight=w, label_smoothing=eps)``: the loss, its mean
    over the rows, and the gradients of logits and labels."""
    x = rng.standard_normal((20, 7))
    y = rng.dirichlet(np.ones(7), 20)
    w = rng.random(7) + 0.2
    logits, labels = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    mean = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(w),
                                             label_smoothing=label_smoothing)
    mean.backward()
    ours, grad = losses.softmax_cross_entropy(y, x, label_smoothing=label_smoothing,
                                              class_weight=w, reduction=losses.Reduction.MEAN,
                                              return_grad=True)
    np.testing.assert_allclose(ours, mean.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, logits.grad.numpy(), atol=1e-14)
    per_row = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y),
                                                weight=torch.tensor(w), reduction="none",
                                                label_smoothing=label_smoothing)
    row_loss, _, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=y, logits=x, class_weight=w, label_smoothing=label_smoothing, return_grad=True,
        return_labels_grad=True)
    np.testing.assert_allclose(row_loss, per_row.numpy(), rtol=1e-12)
    labels.grad = None
    torch.nn.functional.cross_entropy(torch.tensor(x), labels, weight=torch.tensor(w),
                                      reduction="sum", label_smoothing=label_smoothing).backward()
    np.testing.assert_allclose(labels_grad, labels.grad.numpy(), atol=1e-13)
