"""optax's ``axis`` and ``where`` (given per example): the class axis anywhere for integer
labels, and masked rows with loss 0 and gradient 0, against the reference and optax itself."""

import numpy as np
import pytest

import reference
from fastxent import nn


def _case(rng, shape=(4, 6, 5), axis=1):
    x = (rng.standard_normal(shape) * 3).astype(np.float64)
    batch = shape[:axis] + shape[axis + 1:]
    t = rng.integers(0, shape[axis], batch)
    mask = rng.random(batch) > 0.4
    return x, t, mask


@pytest.mark.parametrize("axis", [0, 1, -1, -3])
def test_sparse_class_axis_anywhere(rng, axis):
    x, t, _ = _case(rng, axis=axis % 3)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, axis=axis,
                                                             return_grad=True)
    want_loss, want_grad = reference.sparse(t, np.moveaxis(x, axis, -1))
    reference.assert_loss_close(loss, want_loss, np.float64)
    reference.assert_grad_close(grad, np.moveaxis(want_grad, -1, axis), np.float64)


def test_sparse_axis_checks_the_labels_shape(rng):
    x, t, _ = _case(rng)
    with pytest.raises(ValueError, match="without axis 1"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=t.T, logits=x, axis=1)


def test_masked_rows_are_zero_and_unchecked(rng):
    x, t, mask = _case(rng, axis=2)
    t = np.where(mask, t, 99)              # masked rows' labels are out of range: not checked
    x[~mask] = np.inf                       # nor are their logits read into the result
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, where=mask,
                                                             return_grad=True)
    assert (loss[~mask] == 0).all() and not grad[~mask].any()
    want_loss, want_grad = reference.sparse(t[mask], x[mask])
    reference.assert_loss_close(loss[mask], want_loss, np.float64)
    reference.assert_grad_close(grad[mask], want_grad, np.float64)


def test_dense_masked_rows(rng):
    x, _, mask = _case(rng, axis=2)
    y = rng.random(x.shape)
    loss, grad, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=y, logits=x, where=mask, return_grad=True, return_labels_grad=True)
    assert (loss[~mask] == 0).all() and not grad[~mask].any() and not labels_grad[~mask].any()
    want_loss, want_grad, want_labels_grad = reference.dense(y[mask], x[mask])
    reference.assert_loss_close(loss[mask], want_loss, np.float64)
    reference.assert_grad_close(grad[mask], want_grad, np.float64)


def test_where_must_be_a_boolean_row_mask(rng):
    x, t, mask = _case(rng, axis=2)
    with pytest.raises(TypeError, match="where must be a boolean array"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, where=mask.astype(int))
    with pytest.raises(ValueError, match="where must be a mask of rows"):
        nn.softmax_cross_entropy_with_logits(labels=x, logits=x, where=np.ones(7, bool))
    with pytest.raises(NotImplementedError, match="where= of single logits"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x,
                                                    where=np.ones(x.shape, bool))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_dense_mask_of_entries(rng, axis):
    """Masked logits are out of the normalizer and their labels out of the sum; a row with
    nothing kept is 0 (optax's ``where`` of the logits' shape)."""
    x = rng.standard_normal((4, 6, 5))
    y = rng.random(x.shape)
    keep = rng.random(x.shape) > 0.3
    index = [slice(None)] * 3
    index[axis] = slice(None)
    row = [0, 0, 0]
    row[axis] = slice(None)
    keep[tuple(row)] = False                     # one row with nothing kept
    x[~keep] = np.inf                            # never read
    loss, grad, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=y, logits=x, axis=axis, where=keep, return_grad=True, return_labels_grad=True)
    xm = np.moveaxis(np.where(keep, x, -np.inf), axis, -1)
    ym = np.moveaxis(np.where(keep, y, 0.0), axis, -1)
    km = np.moveaxis(keep, axis, -1)
    want_loss, want_grad, want_labels_grad = reference.dense(ym, xm)
    empty = ~km.any(-1)
    want_loss[empty], want_grad[empty] = 0, 0
    want_labels_grad = np.where(km, want_labels_grad, 0.0)
    reference.assert_loss_close(loss, want_loss, np.float64)
    reference.assert_grad_close(np.moveaxis(grad, axis, -1), want_grad, np.float64)
    reference.assert_grad_close(np.moveaxis(labels_grad, axis, -1), want_labels_grad, np.float64,
                                scale=10)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_matches_optax(rng, axis):
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jnp = jax.numpy
    x, t, mask = _case(rng, axis=axis)
    x = x.astype(np.float32)
    y = rng.random(x.shape).astype(np.float32)
    entries = rng.random(x.shape) > 0.3
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, axis=axis,
                                                             where=mask, return_grad=True)
    sparse = lambda z: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
        z, jnp.asarray(t), axis=axis, where=jnp.asarray(mask))
    np.testing.assert_allclose(loss, sparse(jnp.asarray(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, jax.grad(lambda z: sparse(z).sum())(jnp.asarray(x)),
                               atol=1e-6)
    dloss, dgrad = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=axis,
                                                        where=mask, return_grad=True)
    dense = lambda z: optax.softmax_cross_entropy(  # noqa: E731
        z, jnp.asarray(y), axis=axis, where=jnp.asarray(mask))
    np.testing.assert_allclose(dloss, dense(jnp.asarray(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dgrad, jax.grad(lambda z: dense(z).sum())(jnp.asarray(x)),
                               atol=1e-5)
    eloss, egrad = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=axis,
                                                        where=entries, return_grad=True)
    masked = lambda z: optax.softmax_cross_entropy(  # noqa: E731
        z, jnp.asarray(y), axis=axis, where=jnp.asarray(entries))
    np.testing.assert_allclose(eloss, masked(jnp.asarray(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(egrad, jax.grad(lambda z: masked(z).sum())(jnp.asarray(x)),
                               atol=1e-5)


@pytest.mark.parametrize("axes", [(1, 3), (3, 1), (0, 2, 3), (2,)])
def test_dense_over_a_tuple_of_axes(rng, axes):
    """optax's ``axis=(...)``: the classes are those axes' entries; the gradients keep the
    logits' layout and the labels' gradient the labels' shape."""
    x = rng.standard_normal((3, 4, 5, 6))
    y = rng.random((1, 4, 5, 6))                      # broadcast along the first axis
    loss, grad, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=y, logits=x, axis=axes, return_grad=True, return_labels_grad=True)
    rest = [k for k in range(4) if k not in axes]
    order = rest + list(axes)
    xm = np.transpose(x, order).reshape(tuple(x.shape[k] for k in rest) + (-1,))
    ym = np.transpose(np.broadcast_to(y, x.shape), order).reshape(xm.shape)
    want_loss, want_grad, want_labels_grad = reference.dense(ym, xm)
    back = np.argsort(order)
    moved = tuple(x.shape[k] for k in order)
    reference.assert_loss_close(loss, want_loss, np.float64)
    reference.assert_grad_close(grad, np.transpose(want_grad.reshape(moved), back), np.float64)
    assert labels_grad.shape == y.shape
    reference.assert_grad_close(
        labels_grad, np.transpose(want_labels_grad.reshape(moved), back).sum(0, keepdims=True),
        np.float64, scale=100)
    out = np.empty_like(x)
    nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=axes, return_grad=True,
                                         grad_out=out)
    np.testing.assert_array_equal(out, grad)


def test_a_tuple_of_axes_must_not_repeat(rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="distinct axes"):
        nn.softmax_cross_entropy_with_logits(labels=x, logits=x, axis=(1, -1))
