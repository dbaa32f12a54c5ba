"""The backend protocol as a specification: every backend present meets it.

Two levels, each parametrized over what this machine has:

- the primitives of ``fastxent._backends.Backend`` on one backend's own arrays: the CPU
  kernels; the CPU's plain kernel with the options composed around it (the path the GPU
  takes for them, ``fastxent._core.options.compose_sparse_rows``); CUDA when CuPy has a device;
- the public functions on every array kind (NumPy; Dask on the threaded scheduler and on a
  distributed cluster; CuPy when present), against the float64 reference.

A new backend is done when it is added to ``BACKENDS`` here and this file passes
(docs/ADDING_A_BACKEND.md).
"""

import math
import types

import numpy as np
import pytest

import reference
from fastxent import _backends as _backend, losses, nn
from fastxent._backends import cpu as _cpu
from fastxent._dask import lse as _lse
from fastxent._backends.cuda import compose_dense_rows, compose_sparse_rows


def _cuda_or_skip():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    from fastxent._backends import cuda as _cuda

    return _cuda


def _composed_cpu():
    """The CPU backend with its options composed around its plain kernel, as the GPU's are."""
    def sparse_rows(logits, labels, loss, grad, scale, n_threads=None, *, ignore_index=None,
                    class_weight=None, label_smoothing=0.0):
        if ignore_index is None and class_weight is None and not label_smoothing:
            return _cpu.sparse_rows(logits, labels, loss, grad, scale, n_threads)
        compose_sparse_rows(_cpu.sparse_rows, np, logits, labels, loss, grad, scale, n_threads,
                            ignore_index, class_weight, label_smoothing)

    def dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale, n_threads=None, *,
                   class_weight=None, mask=None):
        if class_weight is None and mask is None:
            return _cpu.dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale,
                                   n_threads)
        compose_dense_rows(_cpu.dense_rows, np, logits, labels, loss, grad, labels_grad, a, b,
                           scale, n_threads, class_weight, mask)

    namespace = {name: getattr(_cpu, name) for name in _cpu.__all__}
    namespace["sparse_rows"] = sparse_rows
    namespace["dense_rows"] = dense_rows
    return types.SimpleNamespace(**namespace)


BACKENDS = {
    "cpu": lambda: _cpu,
    "cpu, options composed": _composed_cpu,
    "cuda": _cuda_or_skip,
}


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    return BACKENDS[request.param]()


def _to(backend, a):
    return backend.xp.asarray(a)


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _options_reference(x, t, scale, ignore_index, class_weight, eps):
    """PyTorch's options in float64 (fastxent._core.options' formulas, written out)."""
    x = x.astype(np.float64)
    rows, classes = x.shape
    loss_t, grad_t = reference.sparse(np.where(t == ignore_index, 0, t), x)
    u = np.ones(classes) if class_weight is None else class_weight
    keep = np.ones(rows, bool) if ignore_index is None else t != ignore_index
    safe = np.where(keep, t, 0)
    m, r, _ = reference._normalizer(x)
    neg_log_p = np.log1p(r)[:, None] + (m - x)
    loss = (1 - eps) * u[safe] * loss_t + eps / classes * (u * neg_log_p).sum(1)
    p = grad_t + (np.arange(classes) == safe[:, None])
    k = (1 - eps) * u[safe] + eps * u.sum() / classes
    grad = k[:, None] * p - (1 - eps) * u[safe][:, None] * (np.arange(classes) == safe[:, None])
    grad -= eps / classes * u
    grad *= scale[:, None]
    return np.where(keep, loss, 0.0), np.where(keep[:, None], grad, 0.0)


def test_backend_has_every_primitive(backend):
    for name in ("xp", "checks_labels", "sparse_rows", "dense_rows", "first_invalid_label",
                 "row_partials", "sparse_grad_given", "dense_sums_given", "dense_grad_given",
                 "info"):
        assert hasattr(backend, name), name
    assert isinstance(_cpu, _backend.Backend)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [1, 5, 37, 3000])
@pytest.mark.parametrize("ignore_index", [None, -100, 2])
@pytest.mark.parametrize("class_weight", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_sparse_rows(backend, rng, dtype, classes, ignore_index, class_weight, eps):
    rows = 29
    x = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
    t = rng.integers(0, classes, rows)
    if ignore_index is not None:
        t[::3] = ignore_index
        if ignore_index >= classes:
            t[::3] = 0
    u = rng.random(classes) + 0.1 if class_weight else None
    scale = rng.random(rows)
    loss = backend.xp.empty(rows, np.float64)
    grad = backend.xp.empty((rows, classes), dtype)
    backend.sparse_rows(_to(backend, x), _to(backend, t.astype(np.int64)), loss, grad,
                        _to(backend, scale), None, ignore_index=ignore_index,
                        class_weight=None if u is None else _to(backend, u), label_smoothing=eps)
    want_loss, want_grad = _options_reference(x, t, scale, ignore_index, u, eps)
    reference.assert_loss_close(_host(loss), want_loss, dtype)
    reference.assert_grad_close(_host(grad), want_grad, dtype, scale=1 + (u.max() if class_weight else 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [3, 40, 5000])
def test_dense_rows(backend, rng, dtype, classes):
    rows = 23
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    y = rng.random((rows, classes)).astype(dtype)
    a, b = 0.9, 0.1 / classes
    scale = rng.random(rows)
    loss = backend.xp.empty(rows, dtype)
    grad = backend.xp.empty((rows, classes), dtype)
    labels_grad = backend.xp.empty((rows, classes), dtype)
    backend.dense_rows(_to(backend, x), _to(backend, y), loss, grad, labels_grad, a, b,
                       _to(backend, scale), None)
    want_loss, want_grad, want_labels_grad = reference.dense(y, x, a, b)
    reference.assert_loss_close(_host(loss), want_loss, dtype)
    reference.assert_grad_close(_host(grad), want_grad * scale[:, None], dtype)
    reference.assert_grad_close(_host(labels_grad), want_labels_grad * scale[:, None], dtype,
                                scale=10 * np.abs(want_labels_grad).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [3, 40, 5000])
def test_dense_rows_with_class_weight(backend, rng, dtype, classes):
    """PyTorch's ``weight`` with probability targets: the labels times the class weights."""
    rows = 23
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    y = rng.random((rows, classes)).astype(dtype)
    u = rng.random(classes) + 0.1
    a, b = 0.8, 0.2 / classes
    scale = rng.random(rows)
    loss = backend.xp.empty(rows, dtype)
    grad = backend.xp.empty((rows, classes), dtype)
    labels_grad = backend.xp.empty((rows, classes), dtype)
    backend.dense_rows(_to(backend, x), _to(backend, y), loss, grad, labels_grad, a, b,
                       _to(backend, scale), None, class_weight=_to(backend, u))
    weighted = (a * y.astype(np.float64) + b) * u
    want_loss, want_grad, want_labels_grad = reference.dense(weighted, x)
    reference.assert_loss_close(_host(loss), want_loss, dtype)
    reference.assert_grad_close(_host(grad), want_grad * scale[:, None], dtype, scale=classes)
    reference.assert_grad_close(_host(labels_grad), want_labels_grad * a * u * scale[:, None],
                                dtype, scale=10 * np.abs(want_labels_grad).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_rows_with_a_mask_of_entries(backend, rng, dtype):
    rows, classes = 23, 37
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    y = rng.random((rows, classes)).astype(dtype)
    keep = rng.random((rows, classes)) > 0.3
    keep[5] = False
    u = rng.random(classes) + 0.1
    scale = rng.random(rows)
    loss = backend.xp.empty(rows, dtype)
    grad = backend.xp.empty((rows, classes), dtype)
    labels_grad = backend.xp.empty((rows, classes), dtype)
    backend.dense_rows(_to(backend, x), _to(backend, y), loss, grad, labels_grad, 1.0, 0.0,
                       _to(backend, scale), None, class_weight=_to(backend, u),
                       mask=_to(backend, keep))
    want_loss, want_grad, want_labels_grad = reference.dense(
        np.where(keep, y * u, 0.0), np.where(keep, x.astype(np.float64), -np.inf))
    want_loss[5], want_grad[5] = 0, 0
    want_labels_grad = np.where(keep, want_labels_grad * u, 0.0)
    reference.assert_loss_close(_host(loss), want_loss, dtype)
    reference.assert_grad_close(_host(grad), want_grad * scale[:, None], dtype, scale=3)
    reference.assert_grad_close(_host(labels_grad), want_labels_grad * scale[:, None], dtype,
                                scale=10 * np.abs(want_labels_grad).max())


def test_first_invalid_label(backend):
    labels = np.array([0, 4, 2, 5, -1], np.int64)
    assert int(backend.first_invalid_label(_to(backend, labels), 5)) == 3
    assert int(backend.first_invalid_label(_to(backend, labels[:3]), 5)) == -1


def _tied_and_untied_partials(rng, n=20_000):
    """Pairs of partial normalizers: half with tied maxima, sums of mixed sizes, and the
    empty partial, -inf maxima and NaN sums among them."""
    m1 = rng.standard_normal(n) * 10
    m2 = np.where(rng.random(n) < 0.5, m1, rng.standard_normal(n) * 10)
    r1 = 10.0 ** rng.uniform(-12, 8, n)
    r2 = 10.0 ** rng.uniform(-12, 8, n)
    m1[:4], r1[:4] = -np.inf, -1.0          # empty first
    m2[4:8], r2[4:8] = -np.inf, -1.0        # empty second
    m1[8], m2[8], r1[8], r2[8] = -np.inf, -np.inf, 0.0, 2.0
    r1[9], m2[10] = np.nan, np.nan
    return m1, r1, m2, r2


def _whole_rows_normalizer(backend, x, cut):
    """The rows' normalizers from the partials of two class blocks, ``x[:, :cut]`` and
    ``x[:, cut:]``, combined with the one rule (``fx_combine``) and finished."""
    xp = backend.xp
    parts = []
    for block in (x[:, :cut], x[:, cut:]):
        m, r = xp.empty(len(x)), xp.empty(len(x))
        backend.row_partials(_to(backend, np.ascontiguousarray(block)), m, r)
        parts.append((_host(m), _host(r)))
    return _lse.finish(*_lse.fx_combine(*parts[0], *parts[1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_class_axis_dense_gradient_is_the_whole_rows(backend, rng, dtype):
    """The pieces of a split class axis give a label distribution's gradient in the whole
    row's exact form: a dominant class whose label is the whole mass gets -r / (1 + r), not
    a rounded 0, as the whole row does."""
    rows, classes, cut = 9, 40, 13
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    y = rng.random((rows, classes)).astype(dtype)
    x[0], y[0] = 0.0, 0.0
    x[0, 20], y[0, 20] = 30.0, 1.0                     # dominant, the whole mass
    xp = backend.xp
    loss, whole = xp.empty(rows, dtype), xp.empty((rows, classes), dtype)
    backend.dense_rows(_to(backend, x), _to(backend, y), loss, whole, None, 1.0, 0.0,
                       _to(backend, np.ones(1)))
    m, r = _whole_rows_normalizer(backend, x, cut)
    total = y.astype(np.float64).sum(axis=1)
    grad = []
    for block, labels in ((x[:, :cut], y[:, :cut]), (x[:, cut:], y[:, cut:])):
        g = xp.empty(block.shape, dtype)
        backend.dense_grad_given(_to(backend, np.ascontiguousarray(block)),
                                 _to(backend, np.ascontiguousarray(labels)), _to(backend, m),
                                 _to(backend, r), 1.0, 0.0, _to(backend, total),
                                 _to(backend, np.ones(rows)), g)
        grad.append(_host(g))
    grad, whole = np.concatenate(grad, axis=1), _host(whole)
    assert grad[0, 20] < 0 and whole[0, 20] < 0
    np.testing.assert_allclose(grad, whole, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-7 if dtype == np.float32 else 1e-15)


def test_the_python_combine_rule_gives_the_c_rules_bits(rng):
    """``fastxent._dask.lse`` runs C's ``fx_combine`` on NumPy arrays (a split class axis on the
    CPU), and the array-library form (CuPy) matches it: bit for bit where the maxima tie,
    ``(r1 + 1) + r2`` as in C, and to the exp's last bits elsewhere."""
    m1, r1, m2, r2 = _tied_and_untied_partials(rng)
    want_m, want_r = np.empty_like(m1), np.empty_like(m1)
    for i in range(m1.size):
        want_m[i], want_r[i] = _c_combine(m1[i], r1[i], m2[i], r2[i])
    m, r = _lse.fx_combine(m1, r1, m2, r2)
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(r, want_r)
    array_library = types.SimpleNamespace(where=np.where, exp=np.exp)
    with np.errstate(invalid="ignore", over="ignore"):
        m, r = _lse.fx_combine(m1, r1, m2, r2, array_library)
    np.testing.assert_array_equal(m, want_m)
    tied = m1 == m2
    assert tied.sum() > 5000
    np.testing.assert_array_equal(r[tied], want_r[tied])
    np.testing.assert_allclose(r, want_r, rtol=1e-15)


def _c_combine(m, r, mc, rc):
    """``fx_combine`` of _src/fx_kernels.h, one pair (NumPy scalars: no exceptions)."""
    if mc == -np.inf and rc == -1.0:
        return m, r
    if m == -np.inf and r == -1.0:
        return mc, rc
    if mc > m:
        return mc, rc + (1.0 + r) * math.exp(m - mc)
    if mc == m:
        return m, r + 1.0 + rc
    return m, r + (1.0 + rc) * math.exp(mc - m)


def test_the_split_class_axis_row_losses_are_the_c_functions(rng):
    m, r = rng.standard_normal(50) * 5, 10.0 ** rng.uniform(-10, 5, 50)
    xt, sy, syx = rng.standard_normal(50), rng.random(50), rng.standard_normal(50)
    np.testing.assert_array_equal(_lse.fx_sparse_loss(m, r, xt),
                                  [math.log1p(a) + (b - c) for a, b, c in zip(r, m, xt)])
    np.testing.assert_array_equal(_lse.fx_dense_loss(r, sy, syx),
                                  [s * math.log1p(a) - q for a, s, q in zip(r, sy, syx)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_class_axis_pieces_combine_to_the_whole_row(backend, rng, dtype):
    """Partials of two class blocks, combined with the one rule (``fx_combine``), give the
    whole rows' normalizer; each block's gradient from it is the whole row's slice."""
    rows, classes, cut = 17, 300, 120
    x = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    t = rng.integers(0, classes, rows)
    xp = backend.xp
    m, r = _whole_rows_normalizer(backend, x, cut)
    want_m, want_r, _ = reference._normalizer(x.astype(np.float64))
    np.testing.assert_allclose(m, want_m[:, 0], rtol=1e-7)
    np.testing.assert_allclose(r, want_r, rtol=1e-5 if dtype == np.float32 else 1e-12)
    _, want_grad = reference.sparse(t, x)
    scale = rng.random(rows)
    grad = []
    for start, block in ((0, x[:, :cut]), (cut, x[:, cut:])):
        g = xp.empty(block.shape, dtype)
        xt = x[np.arange(rows), t].astype(np.float64)
        backend.sparse_grad_given(_to(backend, np.ascontiguousarray(block)), _to(backend, m),
                                  _to(backend, r), _to(backend, xt),
                                  _to(backend, (t - start).astype(np.int64)),
                                  _to(backend, scale), g)
        grad.append(_host(g))
    reference.assert_grad_close(np.concatenate(grad, axis=1), want_grad * scale[:, None], dtype)


# --- the public functions on every array kind -------------------------------------------------

def _numpy(a):
    return a


def _dask_kind(scheduler):
    def make():
        da = pytest.importorskip("dask.array")
        if scheduler == "processes":
            distributed = pytest.importorskip("distributed")
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                               processes=True, dashboard_address=None)
            client = distributed.Client(cluster)
            compute = lambda *arrays: client.compute(list(arrays), sync=True)  # noqa: E731
            close = lambda: (client.close(), cluster.close())  # noqa: E731
        else:
            compute = lambda *arrays: [a.compute(scheduler="threads") for a in arrays]  # noqa: E731
            close = lambda: None  # noqa: E731
        wrap = lambda a: da.from_array(np.asarray(a), chunks=(11,) + np.shape(a)[1:])  # noqa: E731
        return wrap, compute, close
    return make


def _cupy_kind():
    _cuda_or_skip()
    import cupy

    return cupy.asarray, lambda *arrays: [a.get() for a in arrays], lambda: None


ARRAY_KINDS = {
    "numpy": lambda: (_numpy, lambda *arrays: list(arrays), lambda: None),
    "dask threads": _dask_kind("threads"),
    "dask distributed": _dask_kind("processes"),
    "cupy": _cupy_kind,
}


@pytest.fixture(scope="module", params=list(ARRAY_KINDS))
def kind(request):
    wrap, compute, close = ARRAY_KINDS[request.param]()
    yield wrap, compute
    close()


def test_public_functions_on_every_array_kind(kind, rng):
    wrap, compute = kind
    x = (rng.standard_normal((40, 9)) * 3).astype(np.float32)
    t = rng.integers(0, 9, 40)
    y = rng.random((40, 9)).astype(np.float32)
    w = rng.random(40)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=wrap(t), logits=wrap(x),
                                                             return_grad=True)
    dloss, dgrad = nn.softmax_cross_entropy_with_logits(labels=wrap(y), logits=wrap(x),
                                                        return_grad=True)
    mean, mean_grad = losses.sparse_softmax_cross_entropy(
        wrap(t), wrap(x), wrap(w), reduction=losses.Reduction.MEAN, return_grad=True)
    loss, grad, dloss, dgrad, mean, mean_grad = compute(loss, grad, dloss, dgrad, mean, mean_grad)
    want_loss, want_grad = reference.sparse(t, x)
    reference.assert_loss_close(loss, want_loss, np.float32)
    reference.assert_grad_close(grad, want_grad, np.float32)
    want_dloss, want_dgrad, _ = reference.dense(y, x)
    reference.assert_loss_close(dloss, want_dloss, np.float32)
    reference.assert_grad_close(dgrad, want_dgrad, np.float32)
    want_mean, want_mean_grad = reference.weighted_rows(want_loss, want_grad, w, "weighted_mean")
    reference.assert_loss_close(mean, want_mean, np.float32)
    reference.assert_grad_close(mean_grad, want_mean_grad, np.float32)


def test_split_class_partials_may_be_misaligned(rng):
    """Row partials from other Dask tasks arrive unpickled at any byte offset; the CPU
    backend reads them safely (an error under tools/sanitize.sh otherwise)."""
    from fastxent._backends import cpu as _cpu

    def misaligned(a):
        raw = np.empty(a.nbytes + 1, np.uint8)
        out = raw[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out

    logits = rng.standard_normal((5, 4))
    m, r = np.empty(5), np.empty(5)
    _cpu.row_partials(logits, m, r)
    labels = rng.integers(0, 4, 5)
    xt = logits[np.arange(5), labels]
    want, got = np.empty_like(logits), np.empty_like(logits)
    args = (m, r, xt, labels, np.ones(5))
    _cpu.sparse_grad_given(logits, *args, want)
    _cpu.sparse_grad_given(logits, *map(misaligned, args), got)
    np.testing.assert_array_equal(got, want)
