"""fastxent.nn.sparse_softmax_cross_entropy_with_logits (SPEC section 2)."""

import numpy as np
import pytest

import fastxent
import reference
from fastxent.nn import sparse_softmax_cross_entropy_with_logits as sparse_xent


def _random_case(rng, batch_shape, num_classes, dtype, spread=4.0):
    logits = (rng.standard_normal(batch_shape + (num_classes,)) * spread).astype(dtype)
    labels = rng.integers(0, num_classes, batch_shape)
    return labels, logits


# --- worked examples -------------------------------------------------------------------

def test_tf_test_suite_example():
    logits = np.array([[1.0, 1, 1, 1], [1, 2, 3, 4]])
    loss, grad = sparse_xent(labels=np.array([3, 0]), logits=logits, return_grad=True)
    # SPEC prints 3.4420 for the second row; lse([1, 2, 3, 4]) - 1 is 3.44019 (a typo there).
    np.testing.assert_allclose(loss, [1.3862944, 3.4401897], rtol=1e-7)
    np.testing.assert_allclose(grad, [[0.25, 0.25, 0.25, -0.75],
                                      [-0.9679, 0.0871, 0.2369, 0.6439]], atol=1e-4)


def test_rank1_logits_with_a_0d_label_give_a_0d_loss():
    assert sparse_xent(labels=0, logits=[1.0]) == 0.0
    loss = sparse_xent(labels=1, logits=np.array([1.0, 2.0]))
    assert np.ndim(loss) == 0
    np.testing.assert_allclose(loss, 0.31326169, rtol=1e-7)


def test_extreme_logits_are_exact():
    loss, grad = sparse_xent(labels=np.array(1), logits=np.array([1000.0, 0.0, -1000.0]),
                             return_grad=True)
    assert loss == 1000.0
    np.testing.assert_array_equal(grad, [1.0, -1.0, 0.0])


def test_confident_rows_keep_relative_precision(dtype):
    # loss = log1p(exp(-12)) ~ 6.1e-6: computing log(1 + r) would lose it in float32.
    logits = np.array([[12.0, 0.0]], dtype)
    loss = sparse_xent(labels=[0], logits=logits)
    reference.assert_loss_close(loss, [np.log1p(np.exp(-12.0))], dtype)


# --- against the reference ----------------------------------------------------------------

@pytest.mark.parametrize("batch_shape", [(), (7,), (3, 5), (2, 3, 4)])
@pytest.mark.parametrize("num_classes", [1, 2, 10, 257])
def test_matches_reference(dtype, rng, batch_shape, num_classes):
    labels, logits = _random_case(rng, batch_shape, num_classes, dtype)
    loss, grad = sparse_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    assert np.shape(loss) == batch_shape and grad.shape == logits.shape
    assert loss.dtype == dtype and grad.dtype == dtype
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)


def test_long_rows_match_reference(rng):
    labels, logits = _random_case(rng, (3,), 128_256, np.float32, spread=10.0)
    loss, grad = sparse_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, np.float32)
    reference.assert_grad_close(grad, want_grad, np.float32)


@pytest.mark.parametrize("view", ["columns_strided", "rows_reversed", "fortran", "transposed",
                                  "unaligned"])
def test_non_contiguous_logits(dtype, rng, view):
    labels, logits = _random_case(rng, (6,), 9, dtype)
    if view == "columns_strided":
        wide = np.repeat(logits, 2, axis=1)
        wide[:, 1::2] = np.nan  # must never be read
        logits = wide[:, ::2]
    elif view == "rows_reversed":
        logits = logits[::-1]
        labels = labels[::-1]
    elif view == "fortran":
        logits = np.asfortranarray(logits)
    elif view == "transposed":
        logits = np.ascontiguousarray(logits.T).T
    else:
        buffer = np.zeros(logits.nbytes + 1, np.uint8)
        unaligned = buffer[1:].view(dtype).reshape(logits.shape)
        unaligned[...] = logits
        assert not unaligned.flags.aligned
        logits = unaligned
    loss, grad = sparse_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)


def test_higher_rank_non_mergeable_batch(rng):
    labels, logits = _random_case(rng, (4, 6), 5, np.float64)
    logits = logits[:, ::2]  # batch axes that no single stride describes
    labels = labels[:, ::2]
    loss, grad = sparse_xent(labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, np.float64)
    reference.assert_grad_close(grad, want_grad, np.float64)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                         np.uint32, np.int64, np.uint64, ">i4"])
def test_any_integer_label_dtype(rng, label_dtype):
    labels, logits = _random_case(rng, (11,), 7, np.float32)
    loss = sparse_xent(labels=labels.astype(label_dtype), logits=logits)
    reference.assert_loss_close(loss, reference.sparse(labels, logits)[0], np.float32)


def test_big_endian_logits(rng):
    labels, logits = _random_case(rng, (5,), 4, np.float64)
    loss = sparse_xent(labels=labels, logits=logits.astype(">f8"))
    assert loss.dtype == np.float64
    reference.assert_loss_close(loss, reference.sparse(labels, logits)[0], np.float64)


def test_read_only_inputs(rng):
    labels, logits = _random_case(rng, (5,), 4, np.float32)
    labels.flags.writeable = False
    logits.flags.writeable = False
    loss = sparse_xent(labels=labels, logits=logits)
    reference.assert_loss_close(loss, reference.sparse(labels, logits)[0], np.float32)


def test_inputs_are_not_modified(dtype, rng):
    labels, logits = _random_case(rng, (8,), 6, dtype)
    before = logits.copy(), labels.copy()
    sparse_xent(labels=labels, logits=logits, return_grad=True)
    np.testing.assert_array_equal(logits, before[0])
    np.testing.assert_array_equal(labels, before[1])


def test_lists_are_accepted():
    loss = sparse_xent(labels=[0, 1], logits=[[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(loss, [np.log(2)] * 2)


# --- empty batches and the class axis ---------------------------------------------------------

@pytest.mark.parametrize("batch_shape", [(0,), (3, 0), (0, 2)])
def test_empty_batch_gives_empty_result(dtype, batch_shape):
    logits = np.zeros(batch_shape + (4,), dtype)
    labels = np.zeros(batch_shape, np.int64)
    loss, grad = sparse_xent(labels=labels, logits=logits, return_grad=True)
    assert loss.shape == batch_shape and loss.dtype == dtype
    assert grad.shape == logits.shape


@pytest.mark.parametrize("batch_shape", [(3,), (0,)])
def test_no_classes_is_an_error_even_for_an_empty_batch(batch_shape):
    with pytest.raises(ValueError, match="at least one class"):
        sparse_xent(labels=np.zeros(batch_shape, int), logits=np.zeros(batch_shape + (0,)))


def test_one_class_gives_zero_loss_and_gradient():
    loss, grad = sparse_xent(labels=[0, 0], logits=[[5.0], [-3.0]], return_grad=True)
    np.testing.assert_array_equal(loss, [0.0, 0.0])
    np.testing.assert_array_equal(grad, [[0.0], [0.0]])


# --- special values (SPEC section 4) -------------------------------------------------------

def test_nan_anywhere_in_a_row_gives_a_nan_row():
    logits = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]])
    loss, grad = sparse_xent(labels=[0, 0], logits=logits, return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()
    assert np.isfinite(loss[1]) and np.isfinite(grad[1]).all()


def test_plus_inf_in_a_row_gives_a_nan_row():
    loss, grad = sparse_xent(labels=[1], logits=[[0.0, np.inf, 1.0]], return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()


def test_all_minus_inf_row_gives_a_nan_row():
    loss, grad = sparse_xent(labels=[1], logits=[[-np.inf] * 3], return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()


def test_minus_inf_at_a_non_target_class_is_finite_with_zero_gradient():
    loss, grad = sparse_xent(labels=[0], logits=[[1.0, -np.inf, 1.0]], return_grad=True)
    np.testing.assert_allclose(loss, [np.log(2)])
    np.testing.assert_array_equal(grad, [[-0.5, 0.0, 0.5]])


def test_minus_inf_at_the_target_gives_inf_loss_and_finite_gradient():
    loss, grad = sparse_xent(labels=[1], logits=[[1.0, -np.inf, 1.0]], return_grad=True)
    assert loss[0] == np.inf
    np.testing.assert_array_equal(grad, [[0.5, -1.0, 0.5]])


def test_float16_extremes_do_not_overflow():
    logits = np.array([[65504.0, -65504.0, 0.0]], np.float16)
    loss, grad = sparse_xent(labels=[1], logits=logits, return_grad=True)
    assert loss.dtype == np.float16
    assert loss[0] == np.inf  # the exact 131008 overflows float16
    np.testing.assert_array_equal(grad, np.array([[1.0, -1.0, 0.0]], np.float16))
    loss = sparse_xent(labels=[0], logits=np.array([[65504.0, 65000.0]], np.float16))
    np.testing.assert_array_equal(loss, np.array([0.0], np.float16))


# --- label range (SPEC sections 2 and 6) -------------------------------------------------------

@pytest.mark.parametrize("bad", [-1, 4, 2**40])
def test_label_out_of_range_raises_with_value_and_position(bad):
    labels = np.array([[0, 1], [2, bad]])
    with pytest.raises(fastxent.InvalidArgumentError,
                       match=rf"label value of {bad} which is outside the valid range of "
                             rf"\[0, 4\).*\(1, 1\)"):
        sparse_xent(labels=labels, logits=np.zeros((2, 2, 4)))


def test_invalid_argument_error_is_a_value_error():
    assert issubclass(fastxent.InvalidArgumentError, ValueError)


def test_huge_unsigned_label_is_reported_exactly():
    labels = np.array([0, 2**64 - 1], np.uint64)
    with pytest.raises(fastxent.InvalidArgumentError, match="18446744073709551615"):
        sparse_xent(labels=labels, logits=np.zeros((2, 3)))


def test_first_offending_label_is_reported():
    labels = np.array([0, 7, -3, 9])
    with pytest.raises(fastxent.InvalidArgumentError, match=r"value of 7 .*\(1,\)"):
        sparse_xent(labels=labels, logits=np.zeros((4, 3)))


def test_validate_false_gives_nan_rows_instead_of_an_error():
    logits = np.zeros((3, 4))
    labels = np.array([0, 7, -1])
    loss, grad = sparse_xent(labels=labels, logits=logits, return_grad=True, validate=False)
    assert np.isfinite(loss[0]) and np.isnan(loss[1:]).all() and np.isnan(grad[1:]).all()
    with pytest.raises(fastxent.InvalidArgumentError):
        sparse_xent(labels=labels, logits=logits, validate=True)
    with pytest.raises(fastxent.InvalidArgumentError):
        fastxent.losses.sparse_softmax_cross_entropy(labels, logits)
