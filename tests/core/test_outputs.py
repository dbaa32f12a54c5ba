"""``out=`` and ``grad_out=``: caller buffers, the in-place gradient, and their checks."""

import numpy as np
import pytest

import fastxent
import reference
from fastxent import losses, nn


def _case(rng, dtype, shape=(6, 5)):
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = rng.integers(0, shape[-1], shape[:-1])
    return labels, logits


# --- results land in the caller's arrays ----------------------------------------------

def test_sparse_out_and_grad_out_are_returned_and_filled(dtype, rng):
    labels, logits = _case(rng, dtype)
    out = np.empty(6, dtype)
    grad_out = np.empty_like(logits)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, out=out, grad_out=grad_out)
    assert loss is out and grad is grad_out
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(out, want_loss, dtype)
    reference.assert_grad_close(grad_out, want_grad, dtype)


def test_strided_and_non_reshapable_outputs(rng):
    labels, logits = _case(rng, np.float64, (4, 3, 5))
    out_base = np.full((4, 6), -7.0)
    grad_base = np.full((4, 6, 10), -7.0)
    out, grad_out = out_base[:, ::2], grad_base[:, ::2, ::2]
    nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, return_grad=True,
                                                out=out, grad_out=grad_out)
    want_loss, want_grad = reference.sparse(labels, logits)
    np.testing.assert_allclose(out, want_loss, rtol=1e-12)
    np.testing.assert_allclose(grad_out, want_grad, rtol=1e-12, atol=1e-15)
    assert (out_base[:, 1::2] == -7).all() and (grad_base[:, 1::2] == -7).all()
    assert (grad_base[..., 1::2] == -7).all()


def test_dense_outputs_with_a_moved_axis(rng):
    logits = rng.standard_normal((5, 4, 3))
    labels = rng.random((5, 4, 3))
    out = np.empty((4, 3))
    grad_out = np.empty((5, 4, 3), order="F")
    loss, grad = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=0,
                                                      return_grad=True, out=out,
                                                      grad_out=grad_out)
    want = reference.dense(np.moveaxis(labels, 0, -1), np.moveaxis(logits, 0, -1))
    np.testing.assert_allclose(out, want[0], rtol=1e-12)
    np.testing.assert_allclose(grad_out, np.moveaxis(want[1], -1, 0), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", [losses.Reduction.NONE, losses.Reduction.MEAN])
def test_losses_out(rng, reduction):
    labels, logits = _case(rng, np.float32)
    shape = (6,) if reduction == losses.Reduction.NONE else ()
    out = np.empty(shape, np.float32)
    result = losses.sparse_softmax_cross_entropy(labels, logits, reduction=reduction, out=out)
    assert result is out
    np.testing.assert_allclose(
        out, losses.sparse_softmax_cross_entropy(labels, logits, reduction=reduction), rtol=0)


# --- the in-place gradient --------------------------------------------------------------

def test_sparse_gradient_in_place_over_the_logits(dtype, rng):
    labels, logits = _case(rng, dtype)
    want_loss, want_grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits.copy(), return_grad=True)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, grad_out=logits)
    assert grad is logits
    np.testing.assert_array_equal(loss, want_loss)
    np.testing.assert_array_equal(logits, want_grad)


@pytest.mark.parametrize("axis", [-1, 0])
def test_dense_gradient_in_place_over_the_logits(dtype, rng, axis):
    logits = rng.standard_normal((6, 5)).astype(dtype)
    labels = rng.random((6, 5))
    want = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits.copy(), axis=axis,
                                                return_grad=True)
    loss, grad = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis,
                                                      return_grad=True, grad_out=logits)
    np.testing.assert_array_equal(loss, want[0])
    np.testing.assert_array_equal(logits, want[1])


def test_in_place_over_non_reshapable_logits(rng):
    base = rng.standard_normal((4, 6, 5))
    logits = base[:, ::2]
    labels = rng.integers(0, 5, (4, 3))
    untouched = base[:, 1::2].copy()
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits.copy(),
                                                       return_grad=True)
    nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, return_grad=True,
                                                grad_out=logits)
    np.testing.assert_array_equal(logits, want[1])
    np.testing.assert_array_equal(base[:, 1::2], untouched)


def test_weighted_loss_gradient_in_place(rng):
    labels, logits = _case(rng, np.float32)
    want = losses.sparse_softmax_cross_entropy(labels, logits.copy(), weights=0.5,
                                               return_grad=True)
    result, grad = losses.sparse_softmax_cross_entropy(labels, logits, weights=0.5,
                                                       return_grad=True, grad_out=logits)
    assert result == want[0]
    np.testing.assert_array_equal(logits, want[1])


# --- refused outputs --------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (lambda x: np.empty(5, x.dtype), "out must have shape"),
    (lambda x: np.empty(6, np.float64 if x.dtype != np.float64 else np.float32),
     "out must have dtype"),
    (lambda x: np.broadcast_to(np.empty(1, x.dtype), (6,)), "read-only"),
    (lambda x: x[:, 0], "out overlaps logits"),
])
def test_bad_out(rng, bad, message):
    labels, logits = _case(rng, np.float32)
    with pytest.raises(ValueError, match=message):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, out=bad(logits))


def test_out_must_be_an_ndarray(rng):
    labels, logits = _case(rng, np.float32)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, out=[0.0] * 6)


@pytest.mark.parametrize("bad, message", [
    (lambda x: np.empty((6, 4), x.dtype), "grad_out must have shape"),
    (lambda x: np.empty((6, 5), np.float64), "grad_out must have dtype"),
    (lambda x: x[::-1], r"grad_out overlaps logits in memory \(only exactly logits"),
    (lambda x: np.lib.stride_tricks.as_strided(x, strides=(0, 4)), "read-only|overlaps"),
])
def test_bad_grad_out(rng, bad, message):
    labels, logits = _case(rng, np.float32)
    with pytest.raises(ValueError, match=message):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    return_grad=True, grad_out=bad(logits))


def test_grad_out_overlapping_out_is_refused(rng):
    labels, logits = _case(rng, np.float64)
    block = np.empty(36)
    with pytest.raises(ValueError, match="grad_out overlaps out"):
        nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=True, out=block[:6],
            grad_out=block[5:35].reshape(6, 5))


def test_grad_out_overlapping_labels_is_refused(rng):
    logits = rng.standard_normal((3, 4))
    labels = rng.random((3, 4))
    with pytest.raises(ValueError, match="grad_out overlaps labels"):
        nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, return_grad=True,
                                             grad_out=labels)


def test_grad_out_without_return_grad_is_refused(rng):
    labels, logits = _case(rng, np.float32)
    with pytest.raises(ValueError, match="return_grad"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    grad_out=np.empty_like(logits))


def test_errors_leave_outputs_untouched(rng):
    labels, logits = _case(rng, np.float32)
    labels[4] = 99
    out = np.full(6, 7.0, np.float32)
    grad_out = np.full_like(logits, 7.0)
    with pytest.raises(fastxent.InvalidArgumentError):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    return_grad=True, out=out,
                                                    grad_out=grad_out)
    assert (out == 7).all() and (grad_out == 7).all()
    with pytest.raises(fastxent.InvalidArgumentError):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    return_grad=True, grad_out=logits)
    assert np.isfinite(logits).all() and not (logits == 7).all()
    before = logits.copy()
    with pytest.raises(ValueError):
        losses.sparse_softmax_cross_entropy(labels, logits, weights=np.ones(5),
                                            return_grad=True, grad_out=logits)
    np.testing.assert_array_equal(logits, before)
