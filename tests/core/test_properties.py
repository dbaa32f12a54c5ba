"""Property tests: any shape (empty, one class), dtype and values, against the reference."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference
from fastxent import losses, nn

SPECIAL = [0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, np.nan, 65504.0, 1e-30]
dtypes = st.sampled_from([np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)])


@st.composite
def logits_arrays(draw, min_classes=1):
    dtype = draw(dtypes)
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    classes = draw(st.integers(min_classes, 9))
    special_rate = draw(st.sampled_from([0.0, 0.05, 0.3]))
    shape = batch + (classes,)
    plain = draw(hnp.arrays(np.float64, shape, elements=st.floats(-60, 60)))
    special = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(SPECIAL)))
    mask = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1))) < special_rate
    with np.errstate(over="ignore"):
        return np.where(mask, special, plain).astype(dtype)


@given(logits_arrays(), st.data())
def test_sparse_matches_reference(logits, data):
    labels = data.draw(hnp.arrays(np.int64, logits.shape[:-1],
                                  elements=st.integers(0, logits.shape[-1] - 1)))
    before = logits.copy()
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                             return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, logits.dtype)
    reference.assert_grad_close(grad, want_grad, logits.dtype)
    np.testing.assert_array_equal(logits, before)


@given(logits_arrays(), st.data())
def test_dense_matches_reference(logits, data):
    labels = data.draw(hnp.arrays(np.float64, logits.shape,
                                  elements=st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0])))
    axis = data.draw(st.integers(-logits.ndim, logits.ndim - 1))
    x, y = np.moveaxis(logits, -1, axis), np.moveaxis(labels, -1, axis)
    loss, grad = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=axis,
                                                      return_grad=True)
    want_loss, want_grad, _ = reference.dense(labels, logits)
    reference.assert_loss_close(loss, want_loss, logits.dtype)
    reference.assert_grad_close(np.moveaxis(grad, axis, -1), want_grad, logits.dtype)


@given(logits_arrays(), st.data())
def test_weighted_sparse_loss_matches_reference(logits, data):
    labels = data.draw(hnp.arrays(np.int64, logits.shape[:-1],
                                  elements=st.integers(0, logits.shape[-1] - 1)))
    weights = data.draw(hnp.arrays(np.float64, logits.shape[:-1],
                                   elements=st.sampled_from([0.0, 0.5, 1.0, 3.0])))
    reduction = data.draw(st.sampled_from(losses.Reduction.all()))
    result, grad = losses.sparse_softmax_cross_entropy(labels, logits, weights,
                                                       reduction=reduction, return_grad=True)
    row_loss, row_grad = reference.sparse(labels, logits)
    want, want_grad = reference.weighted_rows(row_loss, row_grad, weights, reduction)
    reference.assert_loss_close(result, want, logits.dtype)
    reference.assert_grad_close(grad, want_grad, logits.dtype, scale=weights)
