"""Every option on Dask arrays gives the NumPy call's answer.

The class axis in one chunk: every option and combination of the NumPy call, per-row
results bit for bit, reductions to float rounding, on the threaded scheduler and on a
LocalCluster of worker processes. The class axis split across chunks: the options that act
on whole rows (``ignore_index``, a ``where`` of rows) are carried; the others raise
NotImplementedError naming the option and the split axis. The lazy 0-d results convert
with ``float()`` and ``int()``, and arrays of unknown chunk sizes are refused with a pointer
to ``compute_chunk_sizes()``.
"""

import itertools

import numpy as np
import pytest

import fastxent
from fastxent import losses, nn

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

IGNORE = -100
ROWS = (5, 11, 1, 7)           # 24 rows, uneven chunks
CLASSES = 6
SPARSE_OPTIONS = ["ignore_index", "class_weight", "label_smoothing", "where"]
DENSE_OPTIONS = ["class_weight", "label_smoothing", "where_rows", "where_entries"]


def _subsets(names):
    return [combo for k in range(len(names) + 1) for combo in itertools.combinations(names, k)]


@pytest.fixture(params=["threads", "processes"])
def compute(request):
    if request.param == "threads":
        return lambda *arrays: [np.asarray(a.compute(scheduler="threads")) for a in arrays]
    client = request.getfixturevalue("cluster_client")
    return lambda *arrays: [np.asarray(a) for a in client.compute(list(arrays), sync=True)]


def _lazy(array, classes=(CLASSES,)):
    array = np.asarray(array)
    chunks = (ROWS,) + ((classes,) if array.ndim == 2 and array.shape[1] == CLASSES
                        else tuple((d,) for d in array.shape[1:]))
    return da.from_array(array, chunks=chunks)


def _sparse_case(rng, names, dtype=np.float32):
    x = (rng.standard_normal((24, CLASSES)) * 3).astype(dtype)
    t = rng.integers(0, CLASSES, 24)
    kwargs = {}
    if "ignore_index" in names:
        t[[2, 9]] = IGNORE
        kwargs["ignore_index"] = IGNORE
    if "class_weight" in names:
        kwargs["class_weight"] = rng.random(CLASSES) + 0.5
    if "label_smoothing" in names:
        kwargs["label_smoothing"] = 0.2
    where = rng.random(24) < 0.8 if "where" in names else None
    return x, t, kwargs, where


def _dense_case(rng, names, dtype=np.float32):
    x = (rng.standard_normal((24, CLASSES)) * 3).astype(dtype)
    y = rng.random((24, CLASSES)).astype(dtype)
    kwargs = {}
    if "class_weight" in names:
        kwargs["class_weight"] = rng.random(CLASSES) + 0.5
    if "label_smoothing" in names:
        kwargs["label_smoothing"] = 0.2
    where = None
    if "where_rows" in names:
        where = rng.random(24) < 0.8
    if "where_entries" in names:
        where = rng.random((24, CLASSES)) < 0.8
        where[3] = False   # a row with no entry kept
    return x, y, kwargs, where


def _equal(lazy, eager):
    np.testing.assert_array_equal(lazy, eager)


def _close(lazy, eager):
    np.testing.assert_allclose(lazy, eager, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("names", _subsets(SPARSE_OPTIONS), ids=lambda n: "+".join(n) or "plain")
def test_sparse_per_row_is_numpy_bit_for_bit(rng, compute, names):
    x, t, kwargs, where = _sparse_case(rng, names)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
        labels=t, logits=x, return_grad=True, where=where, **kwargs)
    lazy = nn.sparse_softmax_cross_entropy_with_logits(
        labels=_lazy(t), logits=_lazy(x), return_grad=True,
        where=None if where is None else _lazy(where), **kwargs)
    got_loss, got_grad = compute(*lazy)
    _equal(got_loss, loss)
    _equal(got_grad, grad)


@pytest.mark.parametrize("reduction", losses.Reduction.all())
@pytest.mark.parametrize("names", _subsets(SPARSE_OPTIONS[:3]), ids=lambda n: "+".join(n) or "plain")
def test_sparse_reductions_are_numpy(rng, compute, names, reduction):
    x, t, kwargs, _ = _sparse_case(rng, names, np.float64)
    w = rng.random(24)
    w[::4] = 0
    loss, grad = losses.sparse_softmax_cross_entropy(t, x, w, reduction=reduction,
                                                     return_grad=True, **kwargs)
    lazy = losses.sparse_softmax_cross_entropy(_lazy(t), _lazy(x), _lazy(w), reduction=reduction,
                                               return_grad=True, **kwargs)
    got_loss, got_grad = compute(*lazy)
    _close(got_loss, loss)
    _close(got_grad, grad)


@pytest.mark.parametrize("names", _subsets(DENSE_OPTIONS[:3]) + [("where_entries",),
                                                                   ("class_weight", "where_entries")],
                         ids=lambda n: "+".join(n) or "plain")
def test_dense_per_row_is_numpy_bit_for_bit(rng, compute, names):
    x, y, kwargs, where = _dense_case(rng, names)
    want = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, return_grad=True,
                                                return_labels_grad=True, where=where, **kwargs)
    lazy = nn.softmax_cross_entropy_with_logits(
        labels=_lazy(y), logits=_lazy(x), return_grad=True, return_labels_grad=True,
        where=None if where is None else _lazy(where), **kwargs)
    for got, expected in zip(compute(*lazy), want):
        _equal(got, expected)


@pytest.mark.parametrize("reduction", losses.Reduction.all())
def test_dense_reductions_with_options_are_numpy(rng, compute, reduction):
    x, y, kwargs, _ = _dense_case(rng, ["class_weight", "label_smoothing"], np.float64)
    w = rng.random(24)
    want = losses.softmax_cross_entropy(y, x, w, reduction=reduction, return_grad=True,
                                        **kwargs)
    lazy = losses.softmax_cross_entropy(_lazy(y), _lazy(x), _lazy(w), reduction=reduction,
                                        return_grad=True, **kwargs)
    for got, expected in zip(compute(*lazy), want):
        _close(got, expected)


def test_tuple_axes_are_numpy(rng, compute):
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    y = rng.random((6, 3, 4)).astype(np.float32)
    want = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=(1, 2),
                                                return_grad=True)
    lazy = nn.softmax_cross_entropy_with_logits(
        labels=da.from_array(y, chunks=(2, 3, 4)), logits=da.from_array(x, chunks=(2, 3, 4)),
        axis=(1, 2), return_grad=True)
    got = compute(*lazy)
    _equal(got[0], want[0])
    _equal(got[1], want[1])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_logits_and_weights(rng, compute, dtype):
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    x, t, kwargs, _ = _sparse_case(rng, ["ignore_index", "class_weight"], dtype)
    w = (rng.random(24) + 0.5).astype(dtype)
    for reduction in ("none", "mean"):
        want = losses.sparse_softmax_cross_entropy(t, x, w, reduction=reduction,
                                                   return_grad=True, **kwargs)
        lazy = losses.sparse_softmax_cross_entropy(_lazy(t), _lazy(x), _lazy(w),
                                                   reduction=reduction, return_grad=True,
                                                   **kwargs)
        got = compute(*lazy)
        assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
        _equal(got[0], want[0])
        _equal(got[1], want[1])


SPLIT = (2, 3, 1)   # the class axis in three chunks


def test_split_class_axis_carries_ignore_index_and_where(rng, compute):
    x, t, kwargs, where = _sparse_case(rng, ["ignore_index", "where"], np.float64)
    for reduction in (None, "mean", "sum_over_batch_size"):
        call = (nn.sparse_softmax_cross_entropy_with_logits if reduction is None
                else lambda **k: losses.sparse_softmax_cross_entropy(reduction=reduction, **k))
        if reduction is not None:
            want = losses.sparse_softmax_cross_entropy(
                labels=np.where(where, t, IGNORE), logits=x, return_grad=True, reduction=reduction,
                **kwargs)
            lazy = losses.sparse_softmax_cross_entropy(
                labels=_lazy(np.where(where, t, IGNORE)), logits=_lazy(x, SPLIT),
                return_grad=True, reduction=reduction, **kwargs)
        else:
            want = call(labels=t, logits=x, return_grad=True, where=where, **kwargs)
            lazy = call(labels=_lazy(t), logits=_lazy(x, SPLIT), return_grad=True,
                        where=_lazy(where), **kwargs)
        got = compute(*lazy)
        _close(got[0], want[0])
        _close(got[1], want[1])


def test_split_class_axis_carries_where_of_rows_for_label_distributions(rng, compute):
    x, y, kwargs, where = _dense_case(rng, ["where_rows", "label_smoothing"], np.float64)
    want = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, return_grad=True,
                                                return_labels_grad=True, where=where, **kwargs)
    lazy = nn.softmax_cross_entropy_with_logits(
        labels=_lazy(y, SPLIT), logits=_lazy(x, SPLIT), return_grad=True,
        return_labels_grad=True, where=_lazy(where), **kwargs)
    for got, expected in zip(compute(*lazy), want):
        _close(got, expected)


@pytest.mark.parametrize("option, kwargs", [
    ("class_weight", {"class_weight": np.ones(CLASSES)}),
    ("label_smoothing", {"label_smoothing": 0.1}),
])
def test_split_class_axis_names_what_it_cannot_carry(rng, option, kwargs):
    x, t, _, _ = _sparse_case(rng, [])
    with pytest.raises(NotImplementedError, match=f"{option} is not available with the class "
                                                  f"axis split across chunks"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=_lazy(t), logits=_lazy(x, SPLIT),
                                                    **kwargs)
    y = rng.random(x.shape)
    with pytest.raises(NotImplementedError, match="class_weight is not available with the"):
        nn.softmax_cross_entropy_with_logits(labels=_lazy(y, SPLIT), logits=_lazy(x, SPLIT),
                                             class_weight=np.ones(CLASSES))


def test_lazy_scalars_convert_with_float_and_int(rng):
    x, t, _, _ = _sparse_case(rng, [], np.float64)
    mean = losses.sparse_softmax_cross_entropy(_lazy(t), _lazy(x), reduction="mean")
    want = losses.sparse_softmax_cross_entropy(t, x, reduction="mean")
    assert float(mean) == float(want) and int(mean) == int(want)
    assert float(losses.compute_weighted_loss(_lazy(x), 2.0)) == pytest.approx(
        float(losses.compute_weighted_loss(x, 2.0)))
    coef = rng.standard_normal((CLASSES, 3))
    lazy = fastxent.linear_cross_entropy(_lazy(x), coef, _lazy(t % 3), reduction="mean")[0]
    want = fastxent.linear_cross_entropy(x, coef, t % 3, reduction="mean")[0]
    assert float(lazy) == pytest.approx(float(want))


def test_unknown_chunk_sizes_are_refused_with_the_way_out(rng):
    x, t, _, _ = _sparse_case(rng, [])
    keep = _lazy(t) >= 0
    with pytest.raises(ValueError, match=r"labels has unknown chunk sizes .* "
                                         r"labels.compute_chunk_sizes\(\)"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=_lazy(t)[keep], logits=_lazy(x)[keep])
    with pytest.raises(ValueError, match=r"logits has unknown chunk sizes"):
        nn.softmax_cross_entropy_with_logits(labels=_lazy(x), logits=_lazy(x)[keep])
