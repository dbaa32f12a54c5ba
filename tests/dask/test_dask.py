"""Every function on Dask arrays, lazily, against the NumPy results.

Run on the threaded scheduler and on a dask.distributed LocalCluster of two
worker processes. Row chunks are uneven; the class axis is one chunk, or split
into three uneven chunks (combined across chunks with the log-sum-exp rule).
"""

import numpy as np
import pytest

import fastxent
from fastxent import losses, nn

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

ROW_CHUNKS = (7, 30, 1, 22)  # 60 rows, uneven
CLASSES = 9
CLASS_CHUNKS = {"one class chunk": (CLASSES,), "classes split in 3": (2, 4, 3)}


@pytest.fixture(params=["threads", "processes"])
def scheduler(request):
    """Compute with the threaded scheduler, or on the LocalCluster."""
    if request.param == "threads":
        return lambda *arrays: [a.compute(scheduler="threads") for a in arrays]
    client = request.getfixturevalue("cluster_client")
    return lambda *arrays: client.compute(list(arrays), sync=True)


@pytest.fixture
def data(rng):
    logits = (rng.standard_normal((60, CLASSES)) * 3).astype(np.float32)
    labels = rng.integers(0, CLASSES, 60)
    y = rng.random((60, CLASSES)).astype(np.float32)
    weights = rng.random(60)
    weights[::5] = 0
    return logits, labels, y, weights


@pytest.fixture(params=list(CLASS_CHUNKS), autouse=True)
def class_chunks(request):
    global _CLASS_CHUNKS
    _CLASS_CHUNKS = CLASS_CHUNKS[request.param]
    return _CLASS_CHUNKS


_CLASS_CHUNKS = (CLASSES,)


def lazy(array, rows=ROW_CHUNKS):
    """A Dask array of ``array``: uneven rows; the class axis as the current test's."""
    array = np.asarray(array)
    chunks = (rows,) + tuple((d,) for d in array.shape[1:])
    if array.ndim == 2 and array.shape[1] == CLASSES:
        chunks = (rows, _CLASS_CHUNKS)
    return da.from_array(array, chunks=chunks)


def close(got, want, dtype=np.float32):
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), **tol)


def test_sparse(scheduler, data):
    logits, labels, _, _ = data
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=lazy(labels, (10, 50)), logits=lazy(logits), return_grad=True)
    assert isinstance(loss, da.Array) and isinstance(grad, da.Array)
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                       return_grad=True)
    for got, expected in zip(scheduler(loss, grad), want):
        close(got, expected)


@pytest.mark.parametrize("axis", [-1, 0])
def test_dense_both_gradients(scheduler, data, axis):
    logits, _, y, _ = data
    x, yy = np.moveaxis(logits, -1, axis), np.moveaxis(y, -1, axis)
    chunks = (_CLASS_CHUNKS, ROW_CHUNKS) if axis == 0 else (ROW_CHUNKS, _CLASS_CHUNKS)
    got = nn.softmax_cross_entropy_with_logits(
        labels=da.from_array(yy, chunks=chunks), logits=da.from_array(x, chunks=chunks),
        axis=axis, return_grad=True, return_labels_grad=True)
    want = nn.softmax_cross_entropy_with_logits(labels=yy, logits=x, axis=axis,
                                                return_grad=True, return_labels_grad=True)
    for g, w in zip(scheduler(*got), want):
        close(g, w)


def test_dense_broadcast_labels_gradient(scheduler, data):
    logits, _, y, _ = data
    labels = y[:1]
    loss, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=da.from_array(labels), logits=lazy(logits), return_labels_grad=True)
    want = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                return_labels_grad=True)
    got = scheduler(loss, labels_grad)
    assert got[1].shape == (1, CLASSES)
    close(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_v1(scheduler, data):
    logits, _, y, _ = data
    with pytest.warns(DeprecationWarning):
        got = fastxent.compat.v1.nn.softmax_cross_entropy_with_logits(
            labels=lazy(y), logits=lazy(logits), dim=-1)
    close(scheduler(got)[0], nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))


@pytest.mark.parametrize("reduction", losses.Reduction.all())
def test_weighted_losses(scheduler, data, reduction):
    logits, labels, _, weights = data
    onehot = np.eye(CLASSES, dtype=np.float32)[labels]
    cases = [
        (losses.sparse_softmax_cross_entropy(lazy(labels), lazy(logits), lazy(weights),
                                             reduction=reduction, return_grad=True),
         losses.sparse_softmax_cross_entropy(labels, logits, weights, reduction=reduction,
                                             return_grad=True)),
        (losses.softmax_cross_entropy(lazy(onehot), lazy(logits), lazy(weights), 0.1,
                                      reduction=reduction, return_grad=True),
         losses.softmax_cross_entropy(onehot, logits, weights, 0.1, reduction=reduction,
                                      return_grad=True)),
        (losses.compute_weighted_loss(lazy(labels * 0.5), lazy(weights), reduction=reduction,
                                      return_grad=True),
         losses.compute_weighted_loss(labels * 0.5, weights, reduction=reduction,
                                      return_grad=True)),
    ]
    for got, want in cases:
        assert all(isinstance(g, da.Array) for g in got)
        for g, w in zip(scheduler(*got), want):
            close(g, w, np.asarray(w).dtype if np.asarray(w).dtype == np.float64 else np.float32)


def test_zero_denominator_is_zero_with_zero_gradient(scheduler, data):
    logits, labels, _, _ = data
    logits = logits.copy()
    logits[0, 0] = np.nan
    result, grad = losses.sparse_softmax_cross_entropy(lazy(labels), lazy(logits), 0.0,
                                                       return_grad=True)
    result, grad = scheduler(result, grad)
    assert result == 0 and not np.any(grad)


def test_shape_errors_at_graph_build(data):
    logits, labels, y, _ = data
    with pytest.raises(ValueError, match="labels shape"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=da.from_array(labels[:50]),
                                                    logits=lazy(logits))
    with pytest.raises(ValueError, match="does not broadcast"):
        nn.softmax_cross_entropy_with_logits(labels=lazy(y[:, :4]), logits=lazy(logits))
    with pytest.raises(ValueError, match="weights can not be broadcast"):
        losses.sparse_softmax_cross_entropy(lazy(labels), lazy(logits), np.ones(7))
    with pytest.raises(TypeError, match="out= and grad_out="):
        nn.sparse_softmax_cross_entropy_with_logits(labels=lazy(labels), logits=lazy(logits),
                                                    out=np.empty(60, np.float32))


def test_bad_labels_raise_at_compute(scheduler, data):
    logits, labels, _, _ = data
    labels = labels.copy()
    labels[40] = CLASSES
    loss = nn.sparse_softmax_cross_entropy_with_logits(labels=lazy(labels), logits=lazy(logits))
    with pytest.raises(fastxent.InvalidArgumentError, match=f"value of {CLASSES}"):
        scheduler(loss)


def test_split_class_axis_with_special_values(scheduler, data):
    logits, labels, _, _ = data
    logits = logits.copy()
    logits[0, 2:6] = -np.inf          # a whole class chunk of -inf
    logits[1, :] = -np.inf            # a whole row
    logits[2, 7] = np.nan
    logits[3, 0] = np.inf
    logits[4, 3] = 40.0               # a confident row
    labels = labels.copy()
    labels[4] = 3
    got = nn.sparse_softmax_cross_entropy_with_logits(labels=lazy(labels), logits=lazy(logits),
                                                      return_grad=True)
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                       return_grad=True)
    for g, w in zip(scheduler(*got), want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_split_class_axis_is_never_rechunked(data, class_chunks):
    logits, labels, _, _ = data
    x = lazy(logits)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=lazy(labels), logits=x,
                                                             return_grad=True)
    assert grad.chunks == x.chunks
    graph = grad.__dask_graph__()
    for name, dependencies in graph.dependencies.items():
        # only the small per-row partials are gathered; the logits never are
        assert not (name.startswith("rechunk") and x.name in dependencies), name


@pytest.mark.parametrize("batch, bad", [((100,), (65,)), ((10, 12), (7, 5))])
def test_a_bad_label_is_reported_at_its_position_in_the_whole_array(scheduler, rng, class_chunks,
                                                                    batch, bad):
    """Found when its block computes, a bad label is named by its global position, not
    its position in the block."""
    logits = rng.standard_normal(batch + (CLASSES,)).astype(np.float32)
    labels = rng.integers(0, CLASSES, batch)
    labels[bad] = CLASSES + 3
    chunks = tuple((30,) * (d // 30) + ((d % 30,) if d % 30 else ()) if d > 30 else (4, d - 4)
                   for d in batch)
    lazy_logits = da.from_array(logits, chunks=chunks + (class_chunks,))
    loss = nn.sparse_softmax_cross_entropy_with_logits(
        labels=da.from_array(labels, chunks=chunks), logits=lazy_logits)
    with pytest.raises(fastxent.InvalidArgumentError,
                       match=rf"value of {CLASSES + 3} .* position \({', '.join(map(str, bad))},?\)"):
        scheduler(loss)


def test_sparse_class_axis_anywhere(scheduler, rng):
    logits = rng.standard_normal((CLASSES, 12, 5)).astype(np.float32)
    labels = rng.integers(0, CLASSES, (12, 5))
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=0,
                                                       return_grad=True)
    got = nn.sparse_softmax_cross_entropy_with_logits(
        labels=da.from_array(labels, chunks=(4, 5)),
        logits=da.from_array(logits, chunks=(CLASSES, 4, 5)), axis=0, return_grad=True)
    for a, b in zip(scheduler(*got), want):
        close(a, b)
