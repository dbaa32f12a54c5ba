"""bfloat16 (``ml_dtypes.bfloat16``, as JAX, TensorFlow and Keras hand arrays over) wherever
float16 is taken: computed in float32, results in bfloat16, on every CPU path."""

import numpy as np
import pytest

import reference
from fastxent import losses, nn

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = 2.0 ** -7   # one bfloat16 rounding (8 significant bits)


def _case(rng, shape=(37, 11)):
    x = (rng.standard_normal(shape) * 3).astype(BF16)
    t = rng.integers(0, shape[-1], shape[:-1])
    y = rng.random(shape).astype(BF16)
    return x, t, y


def _close(actual, expected, scale=1.0):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected,
                               rtol=TOL, atol=TOL * scale)


@pytest.mark.parametrize("classes", [3, 11, 300])
def test_sparse(path, rng, classes):
    x, t, _ = _case(rng, (37, classes))
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x,
                                                             return_grad=True)
    assert loss.dtype == BF16 and grad.dtype == BF16
    want_loss, want_grad = reference.sparse(t, x.astype(np.float64))
    _close(loss, want_loss)
    _close(grad, want_grad)


@pytest.mark.parametrize("labels_dtype", [BF16, np.float32])
def test_dense(path, rng, labels_dtype):
    x, _, y = _case(rng)
    y = y.astype(labels_dtype)
    loss, grad, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=y, logits=x, return_grad=True, return_labels_grad=True)
    assert loss.dtype == grad.dtype == labels_grad.dtype == BF16
    want_loss, want_grad, want_labels_grad = reference.dense(y.astype(np.float64),
                                                             x.astype(np.float64))
    _close(loss, want_loss, scale=10)
    _close(grad, want_grad, scale=10)
    _close(labels_grad, want_labels_grad, scale=10)


def test_losses_and_outputs(rng):
    x, t, y = _case(rng)
    w = rng.random(37)
    mean, grad = losses.sparse_softmax_cross_entropy(t, x, w, reduction=losses.Reduction.MEAN,
                                                     return_grad=True)
    assert np.asarray(mean).dtype == BF16 and grad.dtype == BF16
    want_loss, want_grad = reference.sparse(t, x.astype(np.float64))
    want_mean, want_mean_grad = reference.weighted_rows(want_loss, want_grad, w, "weighted_mean")
    _close(mean, want_mean)
    _close(grad, want_mean_grad)
    out, grad_out = np.empty(37, BF16), np.empty(x.shape, BF16)
    per_row = losses.softmax_cross_entropy(y, x, w, reduction=losses.Reduction.NONE, out=out)
    assert per_row is out
    in_place = x.copy()
    nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=in_place, return_grad=True,
                                                grad_out=in_place)
    _close(in_place, want_grad)
    nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True,
                                                grad_out=grad_out)
    _close(grad_out, want_grad)


def test_weights_class_weights_and_losses_may_be_bfloat16(rng):
    """Weights, class weights and given losses in bfloat16 count as the float32 values they
    hold."""
    x, t, y = _case(rng)
    w, u = rng.random(37).astype(BF16), rng.random(11).astype(BF16)
    wide_w, wide_u = w.astype(np.float32), u.astype(np.float32)
    np.testing.assert_array_equal(
        losses.sparse_softmax_cross_entropy(t, x, w, reduction="mean"),
        losses.sparse_softmax_cross_entropy(t, x, wide_w, reduction="mean"))
    np.testing.assert_array_equal(
        nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, class_weight=u),
        nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, class_weight=wide_u))
    total = losses.compute_weighted_loss(w, w, reduction="sum")
    assert np.asarray(total).dtype == BF16
    _close(total, float(np.sum(wide_w.astype(np.float64) ** 2)))


def test_options_and_dask(rng):
    x, t, _ = _case(rng)
    smooth = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, label_smoothing=0.1,
                                                         ignore_index=int(t[0]))
    assert smooth.dtype == BF16 and smooth[0] == 0
    da = pytest.importorskip("dask.array")
    lazy = nn.sparse_softmax_cross_entropy_with_logits(labels=da.from_array(t, chunks=10),
                                                       logits=da.from_array(x, chunks=(10, 11)))
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"),
                                  nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x))


def test_matches_torch_bfloat16(rng):
    torch = pytest.importorskip("torch")
    x, t, _ = _case(rng)
    logits = torch.tensor(x.astype(np.float32)).to(torch.bfloat16).requires_grad_()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(t), reduction="sum")
    loss.backward()
    ours, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True)
    _close(np.asarray(ours, np.float64).sum(), float(loss.detach().float()), scale=10)
    _close(grad, logits.grad.float().numpy(), scale=2)
