"""PyTorch's options on the sparse functions: ignore_index, class_weight, label_smoothing.

The reference below writes PyTorch's definition out in float64; where torch is
installed, ``torch.nn.functional.cross_entropy`` is checked too.
"""

import numpy as np
import pytest

import fastxent
import reference
from fastxent import losses, nn

IGNORE = -100


def _reference(logits, labels, ignore_index=None, class_weight=None, eps=0.0):
    """Per-row loss and gradient of PyTorch's cross_entropy(reduction="none")."""
    x = np.asarray(logits, np.float64)
    num_classes = x.shape[-1]
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    t = np.where(keep, labels, 0)
    u = np.ones(num_classes) if class_weight is None else np.asarray(class_weight, np.float64)
    m = x.max(axis=-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(x - m).sum(axis=-1))
    p = np.exp(x - lse[..., None])
    onehot = np.arange(num_classes) == t[..., None]
    nll = lse - np.take_along_axis(x, t[..., None], -1)[..., 0]
    smooth = (u * (lse[..., None] - x)).sum(-1)
    loss = (1 - eps) * u[t] * nll + eps / num_classes * smooth
    k = (1 - eps) * u[t] + eps * u.sum() / num_classes
    grad = k[..., None] * p - (1 - eps) * u[t][..., None] * onehot - eps / num_classes * u
    return np.where(keep, loss, 0.0), np.where(keep[..., None], grad, 0.0), keep, u[t]


OPTIONS = [
    {"ignore_index": IGNORE},
    {"class_weight": "random"},
    {"label_smoothing": 0.25},
    {"ignore_index": IGNORE, "class_weight": "random", "label_smoothing": 0.1},
]


def _case(rng, shape=(9, 6), dtype=np.float64):
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = rng.integers(0, shape[-1], shape[:-1])
    labels.flat[[1, 4]] = IGNORE
    return logits, labels


def _options(rng, options, num_classes):
    options = dict(options)
    if options.get("class_weight") == "random":
        options["class_weight"] = rng.random(num_classes) + 0.5
    return options


def _labels_for(labels, options):
    return labels if "ignore_index" in options else np.where(labels == IGNORE, 0, labels)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_per_row_loss_and_grad(rng, options, dtype):
    logits, labels = _case(rng, (3, 5, 7), dtype)
    options = _options(rng, options, 7)
    labels = _labels_for(labels, options)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, **options)
    want_loss, want_grad, _, _ = _reference(logits, labels, options.get("ignore_index"),
                                            options.get("class_weight"),
                                            options.get("label_smoothing", 0.0))
    assert loss.dtype == dtype and loss.shape == labels.shape and grad.shape == logits.shape
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype, scale=max(1, np.abs(want_grad).max()))


@pytest.mark.parametrize("reduction", losses.Reduction.all())
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
def test_reductions(rng, reduction, options):
    logits, labels = _case(rng)
    options = _options(rng, options, 6)
    labels = _labels_for(labels, options)
    weights = rng.random(9)
    loss, grad = losses.sparse_softmax_cross_entropy(
        labels, logits, weights, reduction=reduction, return_grad=True, **options)
    rows, row_grads, keep, u_t = _reference(logits, labels, options.get("ignore_index"),
                                            options.get("class_weight"),
                                            options.get("label_smoothing", 0.0))
    w = weights * keep
    denominator = {"none": 1.0, "weighted_sum": 1.0, "weighted_mean": (w * u_t).sum(),
                   "weighted_sum_by_nonzero_weights": np.count_nonzero(w),
                   "weighted_sum_over_batch_size": keep.sum()}[reduction]
    want = rows * w if reduction == "none" else (rows * w).sum() / denominator
    np.testing.assert_allclose(loss, want, rtol=1e-12)
    np.testing.assert_allclose(grad, row_grads * (w / denominator)[:, None], atol=1e-15)


def test_ignored_rows_are_zero_even_when_not_finite(rng):
    logits, labels = _case(rng)
    logits[1] = np.nan
    logits[4, 2] = np.inf
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, ignore_index=IGNORE,
        label_smoothing=0.2)
    assert loss[1] == 0 and loss[4] == 0
    assert not grad[[1, 4]].any()
    assert np.isfinite(loss).all()


def test_ignored_rows_are_not_counted_by_the_means(rng):
    logits, labels = _case(rng)
    kept = labels != IGNORE
    full = losses.sparse_softmax_cross_entropy(labels, logits, reduction="weighted_mean",
                                               ignore_index=IGNORE)
    only_kept = losses.sparse_softmax_cross_entropy(labels[kept], logits[kept],
                                                    reduction="weighted_mean")
    np.testing.assert_allclose(full, only_kept, rtol=1e-14)


@pytest.mark.parametrize("reduction", ["weighted_mean", "weighted_sum_over_batch_size",
                                       "weighted_sum_by_nonzero_weights"])
def test_every_row_ignored_gives_zero_not_nan(rng, reduction):
    """A deliberate difference from PyTorch (NaN there): a zero denominator gives 0 and a
    zero gradient, the rule of every reduction here (README, PyTorch's options)."""
    logits, labels = _case(rng)
    loss, grad = losses.sparse_softmax_cross_entropy(
        np.full_like(labels, IGNORE), logits, reduction=reduction, ignore_index=IGNORE,
        return_grad=True)
    assert loss == 0 and not grad.any()


def test_in_place_gradient(rng):
    logits, labels = _case(rng)
    want = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, ignore_index=IGNORE, label_smoothing=0.3)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, grad_out=logits, ignore_index=IGNORE,
        label_smoothing=0.3)
    assert grad is logits
    np.testing.assert_array_equal(loss, want[0])
    np.testing.assert_array_equal(logits, want[1])


def test_labels_other_than_ignore_index_are_still_checked(rng):
    logits, labels = _case(rng)
    labels[6] = 6
    with pytest.raises(fastxent.InvalidArgumentError, match=r"value of 6 .*\(6,\)"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    ignore_index=IGNORE)
    with pytest.raises(fastxent.InvalidArgumentError, match="value of -100"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    label_smoothing=0.1)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"class_weight": [1.0, 2.0]}, ValueError, r"class_weight .* shape \(6,\)"),
    ({"class_weight": ["a"] * 6}, TypeError, "class_weight must be real"),
    ({"class_weight": [1, 1, 1, 1, 1, np.nan]}, ValueError, "class_weight must be finite"),
    ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ({"ignore_index": 1.5}, TypeError, "ignore_index must be an integer"),
])
def test_bad_options(rng, kwargs, error, match):
    logits, labels = _case(rng)
    kwargs = {"ignore_index": IGNORE, **kwargs}
    with pytest.raises(error, match=match):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, **kwargs)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_matches_torch(rng, options, reduction):
    torch = pytest.importorskip("torch")
    logits, labels = _case(rng, (40, 11))
    options = _options(rng, options, 11)
    labels = _labels_for(labels, options)
    ours_reduction = {"none": "none", "sum": "weighted_sum", "mean": "weighted_mean"}[reduction]
    loss, grad = losses.sparse_softmax_cross_entropy(labels, logits, reduction=ours_reduction,
                                                     return_grad=True, **options)
    x = torch.tensor(logits, requires_grad=True)
    weight = options.get("class_weight")
    want = torch.nn.functional.cross_entropy(
        x, torch.tensor(labels), weight=None if weight is None else torch.tensor(weight),
        ignore_index=options.get("ignore_index", -1000), reduction=reduction,
        label_smoothing=options.get("label_smoothing", 0.0))
    want.sum().backward()
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, x.grad.numpy(), atol=1e-15)
