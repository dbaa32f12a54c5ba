"""Hostile inputs, concurrency, memory and huge arrays (issue 7).

Every call either returns the reference answer or raises a documented Python
exception (TypeError, ValueError, InvalidArgumentError); caller arrays are never
written except an explicit out/grad_out; results do not depend on other threads;
repeated calls hold memory flat; indexing is 64-bit.
"""

import gc
import os
import resource
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastxent
import reference
from fastxent import losses, nn

DOCUMENTED = (TypeError, ValueError, fastxent.InvalidArgumentError)
# Examples per fuzz test: 1000 in CI; longer runs: FASTXENT_FUZZ_EXAMPLES=100000
# (CI's run is derandomized, so it is the same 1000 examples every time).
FUZZ_EXAMPLES = int(os.environ.get("FASTXENT_FUZZ_EXAMPLES", "1000"))
FUZZ_FIXED = "FASTXENT_FUZZ_EXAMPLES" not in os.environ

EVERY_DTYPE = [
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
    np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.object_,
    np.dtype("U3"), np.dtype("S3"), np.dtype("datetime64[s]"), np.dtype("timedelta64[ms]"),
    np.dtype([("a", np.float32), ("b", np.int8)]), np.dtype(">f4"), np.dtype(">f8"),
    np.dtype(">i8"), np.dtype("<f2"), np.dtype(">u4"),
]
SPECIAL = [0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 5e-324, 1e-310, 1e300, -1e300,
           3.4e38, 65504.0, 6e-8, 1e-45]


def _as_dtype(values, dtype):
    dtype = np.dtype(dtype)
    with np.errstate(all="ignore"):
        if dtype.kind in "fc":
            return values.astype(dtype)
        if dtype.kind in "iub":
            return np.nan_to_num(values, nan=0, posinf=7, neginf=-7).clip(-100, 100).astype(dtype)
        if dtype.kind == "M":
            return np.zeros(values.shape, dtype)
        if dtype.kind == "m":
            return np.zeros(values.shape, dtype)
        if dtype.kind == "V":
            return np.zeros(values.shape, dtype)
        return values.astype(dtype)


@st.composite
def _layouts(draw, shape, dtype):
    """An array of ``shape`` and ``dtype`` laid out in memory in one of several hostile ways."""
    size = int(np.prod(shape))
    values = np.array(draw(st.lists(st.one_of(st.sampled_from(SPECIAL),
                                              st.floats(-50, 50, allow_nan=False)),
                                    min_size=size, max_size=size)), dtype=np.float64)
    base = _as_dtype(values.reshape(shape), dtype)
    layout = draw(st.sampled_from(["contiguous", "reversed", "strided", "zero", "unaligned",
                                   "fortran", "readonly"]))
    if layout == "reversed" and base.ndim:
        return base[..., ::-1].copy()[..., ::-1]
    if layout == "strided" and base.ndim:
        wide = np.repeat(base, 2, axis=-1)
        return wide[..., ::2]
    if layout == "zero" and base.ndim and base.shape[0] > 0:
        return np.broadcast_to(base[:1], base.shape)
    if layout == "unaligned" and base.dtype.kind in "fiub" and base.itemsize > 1:
        raw = np.zeros(base.nbytes + 1, np.uint8)
        view = np.frombuffer(raw.data, dtype=base.dtype, count=base.size, offset=1)
        view = view.reshape(base.shape) if base.size else view.reshape(base.shape)
        np.copyto(view, base) if view.flags.writeable else None
        return view
    if layout == "fortran":
        return np.asfortranarray(base)
    if layout == "readonly":
        base.flags.writeable = False
    return base


def _labels(draw, shape, num_classes):
    dtype = draw(st.sampled_from([np.int8, np.uint8, np.int32, np.int64, np.uint64, np.int16,
                                  np.float32, np.bool_]))
    bad = draw(st.sampled_from([None, -1, num_classes, 2**31, 2**31 + 5, -2**40, 2**63 - 1]))
    values = draw(st.lists(st.integers(0, max(num_classes - 1, 0)), min_size=int(np.prod(shape)),
                           max_size=int(np.prod(shape))))
    labels = np.array(values, dtype=np.int64).reshape(shape)
    if bad is not None and labels.size:
        labels.flat[draw(st.integers(0, labels.size - 1))] = bad
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind == "u":
            labels = np.where(labels < 0, np.iinfo(dtype).max, labels)
        labels = labels.astype(dtype)
    if draw(st.booleans()) and labels.itemsize > 1:  # unaligned, as unpickled buffers can be
        raw = np.zeros(labels.nbytes + 1, np.uint8)
        view = np.frombuffer(raw.data, labels.dtype, labels.size, offset=1).reshape(labels.shape)
        view[...] = labels
        return view
    return labels


def _snapshot(*arrays):
    return [np.array(a, copy=True) for a in arrays if isinstance(a, np.ndarray)]


def _unchanged(before, arrays):
    """Byte for byte (object arrays: element for element, by repr)."""
    for old, new in zip(before, [a for a in arrays if isinstance(a, np.ndarray)]):
        if old.dtype == object:
            assert [repr(v) for v in old.flat] == [repr(v) for v in new.flat]
        else:
            assert np.ascontiguousarray(old).tobytes() == np.ascontiguousarray(new).tobytes()


def _valid_logits(logits):
    return logits.dtype.kind == "f" and logits.dtype.itemsize in (2, 4, 8)


@settings(max_examples=FUZZ_EXAMPLES, derandomize=FUZZ_FIXED, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_sparse(data):
    batch = tuple(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    num_classes = data.draw(st.integers(0, 6))
    dtype = data.draw(st.sampled_from(EVERY_DTYPE))
    logits = data.draw(_layouts(batch + (num_classes,), dtype))
    labels = _labels(data.draw, batch, num_classes)
    before = _snapshot(logits, labels)
    try:
        loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                                 return_grad=True)
    except DOCUMENTED:
        _unchanged(before, (logits, labels))
        return
    _unchanged(before, (logits, labels))
    assert _valid_logits(logits) and labels.dtype.kind in "iu" and num_classes > 0
    assert labels.size == 0 or (labels.min() >= 0 and labels.max() < num_classes)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, logits.dtype.newbyteorder("="))
    reference.assert_grad_close(grad, want_grad, logits.dtype.newbyteorder("="))


@settings(max_examples=FUZZ_EXAMPLES, derandomize=FUZZ_FIXED, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_dense(data):
    batch = tuple(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    num_classes = data.draw(st.integers(0, 5))
    logits = data.draw(_layouts(batch + (num_classes,), data.draw(st.sampled_from(EVERY_DTYPE))))
    labels = data.draw(_layouts(batch + (num_classes,), data.draw(st.sampled_from(EVERY_DTYPE))))
    before = _snapshot(logits, labels)
    try:
        loss, grad = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                          return_grad=True)
    except DOCUMENTED:
        _unchanged(before, (logits, labels))
        return
    _unchanged(before, (logits, labels))
    assert _valid_logits(logits) and labels.dtype.kind in "biuf"
    assume(labels.dtype != np.longdouble)
    # the kernels read labels in the compute dtype (float32 for float16 and float32 logits)
    compute = np.float64 if logits.dtype.itemsize == 8 else np.float32
    with np.errstate(all="ignore"):
        y = labels.astype(compute).astype(np.float64)
        want_loss, want_grad, _ = reference.dense(y, logits)
    # a label not finite there: a non-finite loss (inf or NaN; docs/DESIGN.md)
    bad = ~np.isfinite(y).all(axis=-1)
    assert not np.isfinite(np.asarray(loss)[bad]).any()
    # a term y' (x - max) beyond the compute dtype's range overflows there (docs/DESIGN.md)
    with np.errstate(all="ignore"):
        x = logits.astype(np.float64)
        terms = np.abs(y * (x - x.max(axis=-1, keepdims=True, initial=-np.inf)))
        huge = (terms > np.finfo(compute).max).any(axis=-1) & (x.shape[-1] > 0)
    got = np.asarray(loss).astype(np.float64)
    assert np.isclose(got[huge], np.asarray(want_loss)[huge], rtol=1e-5).all() \
        or not np.isfinite(got[huge]).all()
    good = ~bad & ~huge
    dtype = logits.dtype.newbyteorder("=")
    # labels of any sign (not distributions) cancel: the error bound is relative to the
    # sum of |terms|, the loss's condition
    rtol = reference.TOLERANCES[dtype][0]
    with np.errstate(all="ignore"):
        m = x.max(-1, initial=-np.inf)
        lse = m + np.log(np.exp(x - m[..., None]).sum(-1))
        size = np.where(y != 0, np.abs(y * (lse[..., None] - x)), 0).sum(-1)
        want = np.asarray(want_loss).astype(dtype).astype(np.float64)  # rounded to the output
        size = np.maximum(size, np.abs(want))
        close = (got == want) | (np.abs(got - want) <= rtol * size + np.finfo(dtype).tiny)
    assert (close | (np.isnan(got) & np.isnan(want)))[good].all()
    # entries beyond the output dtype's range: inf there, or a value within the tolerance
    # of the row's scale (cancellation in p * sum(y') - y' at that size); compared where
    # the whole row's gradient fits
    with np.errstate(invalid="ignore"):
        fits = good & (np.abs(want_grad) <= np.finfo(dtype).max).all(axis=-1)
    scale = np.abs(y[fits]).sum(axis=-1).max(initial=1)
    reference.assert_grad_close(grad[fits], want_grad[fits], dtype, scale=scale)


# --- outputs ----------------------------------------------------------------------------------

def test_read_only_inputs_work_and_read_only_outputs_are_refused(rng):
    logits = rng.standard_normal((4, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 4)
    logits.flags.writeable = labels.flags.writeable = False
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                             return_grad=True)
    assert np.isfinite(loss).all()
    frozen = np.zeros(4, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only|writeable"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, out=frozen)
    with pytest.raises(ValueError):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    out=np.zeros(4, np.float64))
    with pytest.raises(ValueError):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, return_grad=True,
                                                    grad_out=np.zeros((4, 5), np.int32))


def test_outputs_untouched_when_a_label_is_bad(rng):
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 6)
    labels[4] = 2**40
    out = np.full(6, 7.0, np.float32)
    grad_out = np.full((6, 5), 7.0, np.float32)
    with pytest.raises(fastxent.InvalidArgumentError, match="1099511627776"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, out=out,
                                                    return_grad=True, grad_out=grad_out)
    assert (out == 7).all() and (grad_out == 7).all()


# --- 64-bit indexing --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def huge():
    """A (65540, 65537) float32 view with a zero row stride: 2**32 + 196613 elements and 256 KB
    of memory."""
    row = (np.random.default_rng(7).standard_normal(65537) * 3).astype(np.float32)
    logits = np.broadcast_to(row, (65540, 65537))
    assert logits.size > 2**32
    return row, logits


def test_huge_zero_stride_sparse(huge):
    row, logits = huge
    labels = np.broadcast_to(np.int64(65536), logits.shape[:1])
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels[:1], logits=row[None])[0]
    loss = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert (loss == want).all()
    mean = losses.sparse_softmax_cross_entropy(labels, logits, reduction="weighted_mean")
    np.testing.assert_allclose(mean, want, rtol=1e-6)


def test_huge_zero_stride_dense(huge):
    row, logits = huge
    target = np.zeros(65537, np.float32)
    target[[3, 65536]] = 0.5
    labels = np.broadcast_to(target, logits.shape)
    want = nn.softmax_cross_entropy_with_logits(labels=target[None], logits=row[None])[0]
    loss = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert (loss == want).all()
    total = losses.softmax_cross_entropy(labels, logits, reduction="weighted_sum")
    np.testing.assert_allclose(total, want * logits.shape[0], rtol=1e-5)


# --- threads ----------------------------------------------------------------------------------

def _every_function(logits, labels, onehot, weights):
    return [
        lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                            return_grad=True),
        lambda: nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits,
                                                     return_grad=True, return_labels_grad=True),
        lambda: fastxent.compat.v1.nn.softmax_cross_entropy_with_logits(labels=onehot,
                                                                        logits=logits),
        lambda: losses.sparse_softmax_cross_entropy(labels, logits, weights, return_grad=True),
        lambda: losses.softmax_cross_entropy(onehot, logits, weights, 0.1, return_grad=True),
        lambda: losses.compute_weighted_loss(logits, 0.5, return_grad=True),
        lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=True, label_smoothing=0.1,
            class_weight=np.linspace(0.5, 2, logits.shape[1])),
    ]


def _flat(result):
    parts = result if isinstance(result, tuple) else (result,)
    return [np.asarray(p).copy() for p in parts]


def test_eight_threads_give_the_serial_results(rng):
    logits = (rng.standard_normal((512, 300)) * 4).astype(np.float32)
    labels = rng.integers(0, 300, 512)
    onehot = np.eye(300, dtype=np.float32)[labels]
    weights = rng.random(512)
    functions = _every_function(logits, labels, onehot, weights)
    serial = [_flat(f()) for f in functions]
    failures = []

    def worker(seed):
        order = np.random.default_rng(seed).permutation(len(functions))
        for _ in range(10):
            for k in order:
                for got, want in zip(_flat(functions[k]()), serial[k]):
                    if not np.array_equal(got, want, equal_nan=True):
                        failures.append(k)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


# --- memory -----------------------------------------------------------------------------------

def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_no_leak_over_100000_calls(rng):
    logits = rng.standard_normal((8, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    bad = labels.copy()
    bad[3] = 99
    grad_out = np.empty_like(logits)

    def calls(count):
        for k in range(count):
            nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                        return_grad=True, grad_out=grad_out)
            if k % 4 == 0:
                try:
                    nn.sparse_softmax_cross_entropy_with_logits(labels=bad, logits=logits)
                except fastxent.InvalidArgumentError:
                    pass
            if k % 4 == 1:
                losses.softmax_cross_entropy(np.eye(10)[labels], logits, return_grad=True)

    calls(2000)  # warm caches and pools first
    gc.collect()
    rss_before = _rss_mb()
    tracemalloc.start()
    calls(100_000)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = _rss_mb() - rss_before
    assert traced < 1 << 20, f"{traced} bytes still allocated after 100,000 calls"
    if not os.environ.get("FASTXENT_SANITIZED"):  # AddressSanitizer holds freed memory back
        assert growth < 16, f"resident memory grew by {growth:.1f} MB"


# --- interrupts -------------------------------------------------------------------------------

def test_ctrl_c_interrupts_a_long_call(huge):
    import os
    import signal
    import time

    row, one = huge
    logits = np.broadcast_to(row, (4 * one.shape[0], row.size))  # 2**34 elements
    labels = np.zeros(logits.shape[0], np.int64)
    start = time.perf_counter()
    losses.sparse_softmax_cross_entropy(labels[:one.shape[0]], one)
    quarter = time.perf_counter() - start  # a quarter of the long call
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        losses.sparse_softmax_cross_entropy(labels, logits)
        time.sleep(5)  # not reached when the interrupt comes during the call
    assert time.perf_counter() - start < 2 * quarter + 0.5
