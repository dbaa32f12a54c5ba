"""The forward path allocates nothing the size of the logits (NumPy reports to tracemalloc)."""

import tracemalloc

import numpy as np
import pytest

from fastxent import losses, nn

ROWS, CLASSES = 2000, 500


def _peak_bytes(call):
    call()  # warm caches and lazy imports
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided columns", "transposed"])
def test_sparse_forward_allocates_no_logits_sized_temporary(rng, dtype, layout):
    logits = rng.standard_normal((ROWS, CLASSES)).astype(dtype)
    if layout == "strided columns":
        logits = np.repeat(logits, 2, axis=1)[:, ::2]
    elif layout == "transposed":
        logits = np.asfortranarray(logits)
    labels = rng.integers(0, CLASSES, ROWS)
    weights = rng.random(ROWS)
    logits_bytes = logits.size * logits.itemsize
    for call in (
        lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
        lambda: losses.sparse_softmax_cross_entropy(labels, logits, weights,
                                                    reduction=losses.Reduction.MEAN),
    ):
        assert _peak_bytes(call) < logits_bytes / 10


def test_dense_forward_allocates_no_logits_sized_temporary(rng):
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    labels = np.full(CLASSES, 1.0 / CLASSES, np.float32)  # broadcast
    onehot = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, ROWS)]
    for call in (
        lambda: nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits),
        lambda: nn.softmax_cross_entropy_with_logits(labels=onehot.T, logits=logits.T, axis=0),
        lambda: losses.softmax_cross_entropy(onehot, logits, label_smoothing=0.1),
    ):
        assert _peak_bytes(call) < logits.nbytes / 10


def test_gradient_in_place_allocates_no_logits_sized_temporary(rng):
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS)
    call = lambda: nn.sparse_softmax_cross_entropy_with_logits(  # noqa: E731
        labels=labels, logits=logits, return_grad=True, grad_out=logits)
    assert _peak_bytes(call) < logits.nbytes / 10


@pytest.mark.parametrize("ignore_index", [None, 3])
@pytest.mark.parametrize("class_weight", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", [None, losses.Reduction.MEAN])
def test_pytorch_options_allocate_no_logits_sized_temporary(rng, ignore_index, class_weight,
                                                            label_smoothing, reduction):
    """Every option is a coefficient of the kernel's one pass: with ``grad_out`` given,
    no combination allocates a tenth of the logits' bytes."""
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS)
    grad = np.empty_like(logits)
    options = dict(ignore_index=ignore_index, label_smoothing=label_smoothing,
                   class_weight=rng.random(CLASSES) if class_weight else None)
    if reduction is None:
        call = lambda: nn.sparse_softmax_cross_entropy_with_logits(  # noqa: E731
            labels=labels, logits=logits, return_grad=True, grad_out=grad, **options)
    else:
        call = lambda: losses.sparse_softmax_cross_entropy(  # noqa: E731
            labels, logits, rng.random(ROWS), reduction=reduction, return_grad=True,
            grad_out=grad, **options)
    assert _peak_bytes(call) < logits.nbytes / 10


def test_dense_class_weight_allocates_no_logits_sized_temporary(rng):
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    onehot = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, ROWS)]
    grad = np.empty_like(logits)
    call = lambda: losses.softmax_cross_entropy(  # noqa: E731
        onehot, logits, label_smoothing=0.1, class_weight=rng.random(CLASSES),
        reduction=losses.Reduction.MEAN, return_grad=True, grad_out=grad)
    assert _peak_bytes(call) < logits.nbytes / 10


def test_dense_mask_of_entries_allocates_no_logits_sized_temporary(rng):
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    labels = rng.random((ROWS, CLASSES)).astype(np.float32)
    keep = rng.random((ROWS, CLASSES)) > 0.2
    grad = np.empty_like(logits)
    call = lambda: nn.softmax_cross_entropy_with_logits(  # noqa: E731
        labels=labels, logits=logits, where=keep, return_grad=True, grad_out=grad)
    assert _peak_bytes(call) < logits.nbytes / 10
