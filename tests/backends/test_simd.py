"""Every kernel path this CPU runs, against the float64 reference.

Each path (fx_isa_list.h: AVX-512, AVX2+FMA, NEON, SSE2, plain C) is the same C source
compiled for another instruction set, with the same three kernel families: rows in lanes
(a block of VL rows of at most 4 VL classes, VL the lanes of a vector), row batches (a
block of VL rows of any length, read along the rows) and row kernels (chunk by chunk),
each for float16, bfloat16, float32 and float64 storage. The tests switch paths
in-process with ``fastxent._backends._kernels.set_path``, force each family
(``fastxent._backends._kernels.force_family``) and hit every tail length modulo the lanes, the
chunk boundaries, the special rows, and the bit-for-bit thread rule.
"""

import numpy as np
import pytest

import reference
from fastxent import losses, nn
from fastxent._backends import _kernels

PATHS = _kernels.paths()
CHUNK = {np.float32: 2048, np.float64: 1024}


# Shapes chosen to hit the block kernels (rows in lanes: C <= 4 * lanes with at
# least a block of rows), their remainder rows, one or more column tiles, and rows
# longer than one chunk.
SHAPES = [(37, 1), (37, 3), (40, 10), (19, 16), (33, 17), (50, 32), (9, 33), (8, 100),
          (8, 2049), (8, 5000)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sparse_on_every_path(path, rng, shape, dtype):
    logits = (rng.standard_normal(shape) * 4).astype(dtype)
    logits[1, 0] = np.nan
    logits[2, -1] = np.inf
    logits[3, :] = -np.inf
    logits[4, 0] = -np.inf
    logits[5, :] = 0.0                      # all ties
    logits[6, 0] += 30                      # confident
    labels = rng.integers(0, shape[1], shape[0])
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                             return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dense_on_every_path(path, rng, shape, dtype):
    logits = (rng.standard_normal(shape) * 4).astype(dtype)
    logits[1, 0] = np.nan
    logits[3, :] = -np.inf
    logits[4, 0] = -np.inf
    labels = rng.random(shape).astype(dtype)
    labels[4, 0] = 0.0                      # a -inf logit masked by a 0 label
    labels[6] = 0.0
    loss, grad, labels_grad = nn.softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True, return_labels_grad=True)
    want_loss, want_grad, want_labels_grad = reference.dense(labels, logits)
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)
    finite = np.isfinite(want_labels_grad)
    reference.assert_grad_close(labels_grad[finite], want_labels_grad[finite], dtype,
                                scale=np.abs(want_labels_grad[finite]).max(initial=1.0))


@pytest.mark.parametrize("shape", [(48, 10), (16, 32), (24, 7)], ids=str)
def test_blocks_with_smoothing_weights_and_in_place(path, rng, shape):
    logits = rng.standard_normal(shape).astype(np.float32) * 3
    onehot = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], shape[0])]
    weights = rng.random(shape[0])
    want = losses.softmax_cross_entropy(onehot, logits.astype(np.float64), weights, 0.2,
                                        return_grad=True)
    result, grad = losses.softmax_cross_entropy(onehot, logits, weights, 0.2, return_grad=True,
                                                grad_out=logits)
    np.testing.assert_allclose(result, want[0], rtol=1e-5)
    np.testing.assert_allclose(grad, want[1], atol=1e-6)


def test_invalid_labels_never_read_out_of_bounds(path, rng):
    # Below the API (which rejects them), the kernels turn bad labels into NaN rows.
    logits = rng.standard_normal((32, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    labels[[3, 20]] = [-1, 10]
    loss = np.empty(32, np.float32)
    grad = np.empty_like(logits)
    _kernels.sparse_rows(logits, labels, loss, grad, np.ones(1), 1)
    assert np.isnan(loss[[3, 20]]).all() and np.isnan(grad[[3, 20]]).all()
    others = np.delete(np.arange(32), [3, 20])
    assert np.isfinite(loss[others]).all() and np.isfinite(grad[others]).all()


# --- every tail, both kernel families --------------------------------------------------------

def _lanes(dtype):
    """Rows per block of the block families, and the widest rows in lanes."""
    rows = _kernels.families()[np.dtype(dtype).name]["block_rows"]
    return rows, 4 * rows


def _special_rows(logits, labels):
    """NaN, +inf, all -inf, a -inf target, all ties and a confident row, where they fit."""
    n, c = logits.shape
    if n >= 6:
        logits[0, -1] = np.nan
        logits[1, 0] = np.inf
        logits[2, :] = -np.inf
        logits[3, labels[3]] = -np.inf
        logits[4, :] = 0.0
        logits[5, labels[5]] += 40


def _assert_both_label_kinds_match_reference(rng, logits, labels):
    """Loss and gradient with sparse labels, and with random dense ones, against the
    float64 reference."""
    dtype = logits.dtype
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                             return_grad=True)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)
    y = rng.random(logits.shape).astype(dtype)
    loss, grad = nn.softmax_cross_entropy_with_logits(labels=y, logits=logits, return_grad=True)
    want_loss, want_grad, _ = reference.dense(y, logits)
    reference.assert_loss_close(loss, want_loss, dtype)
    reference.assert_grad_close(grad, want_grad, dtype)


FAMILY_DTYPES = [np.float16, np.float32, np.float64]
if reference.ml_dtypes is not None:
    FAMILY_DTYPES.append(reference.ml_dtypes.bfloat16)


@pytest.mark.parametrize("dtype", FAMILY_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_width_in_every_kernel_family(path, family, rng, dtype):
    """C from 1 to past the widest rows in lanes, and around the length where a row batch's
    sums go on in double, with 2 blocks and a partial block of 3 rows, and with fewer rows
    than a block (one partial block)."""
    lanes, block_cols = _lanes(dtype)
    group = 32 * lanes
    widths = list(range(1, block_cols + lanes + 2))
    if family != "lanes":
        widths += [group - 1, group, group + 1, 2 * group + lanes + 1]
    for cols in widths:
        for rows in (2 * lanes + 3, min(lanes - 1, 6) or 1):
            logits = (rng.standard_normal((rows, cols)) * 4).astype(dtype)
            labels = rng.integers(0, cols, rows)
            _special_rows(logits, labels)
            _assert_both_label_kinds_match_reference(rng, logits, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunk_boundaries(path, rng, dtype):
    chunk = CHUNK[dtype]
    lanes, _ = _lanes(dtype)
    for cols in (chunk - 1, chunk, chunk + 1, 2 * chunk + lanes - 1, 3 * chunk + 3):
        logits = (rng.standard_normal((7, cols)) * 4).astype(dtype)
        labels = rng.integers(0, cols, 7)
        _special_rows(logits, labels)
        logits[6, cols - 1] = 25.0            # the max in the last, partial chunk
        _assert_both_label_kinds_match_reference(rng, logits, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block_family", ["lanes", "batch"])
def test_blocks_and_row_kernel_agree(path, rng, dtype, block_family):
    lanes, block_cols = _lanes(dtype)
    logits = (rng.standard_normal((lanes, block_cols)) * 3).astype(dtype)
    labels = rng.integers(0, block_cols, lanes)
    _kernels.force_family(block_family)
    try:
        in_blocks = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                                return_grad=True)
    finally:
        _kernels.force_family(None)
    one_by_one = [nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels[i:i + 1], logits=logits[i:i + 1], return_grad=True) for i in range(lanes)]
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(in_blocks[0], np.concatenate([r[0] for r in one_by_one]), rtol=rtol)
    np.testing.assert_allclose(in_blocks[1], np.concatenate([r[1] for r in one_by_one]),
                               atol=rtol)


@pytest.mark.parametrize("dtype", FAMILY_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("block_family", ["lanes", "batch"])
def test_a_rows_bits_do_not_depend_on_the_other_rows(path, rng, dtype, block_family):
    """A row of a block is its own lane: alone, in a partial block or in a full one, at any
    position, it gets the same bits, so that neither a Dask chunking nor a thread split
    changes a result."""
    lanes, block_cols = _lanes(dtype)
    cols = block_cols // 2 + 1 if block_family == "lanes" else 3 * lanes + 1
    rows = 2 * lanes + 3
    logits = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
    labels = rng.integers(0, cols, rows)
    y = rng.random((rows, cols)).astype(dtype)
    _special_rows(logits, labels)
    _kernels.force_family(block_family)
    try:
        sparse = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                             return_grad=True)
        dense = nn.softmax_cross_entropy_with_logits(labels=y, logits=logits, return_grad=True,
                                                     return_labels_grad=True)
        for start, stop in [(0, 1), (3, 4), (1, lanes + 2), (lanes - 1, rows)]:
            part = nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels[start:stop], logits=logits[start:stop], return_grad=True)
            for got, whole in zip(part, sparse):
                np.testing.assert_array_equal(got, whole[start:stop])
            part = nn.softmax_cross_entropy_with_logits(
                labels=y[start:stop], logits=logits[start:stop], return_grad=True,
                return_labels_grad=True)
            for got, whole in zip(part, dense):
                np.testing.assert_array_equal(got, whole[start:stop])
    finally:
        _kernels.force_family(None)


def test_strided_and_in_place_rows_on_every_path(rng):
    for path in PATHS:
        _kernels.set_path(path)
        try:
            for cols in (5, 40, 300):
                base = (rng.standard_normal((40, 2 * cols)) * 3).astype(np.float32)
                logits = base[:, ::2]                       # strided: gathered rows
                labels = rng.integers(0, cols, 40)
                want_loss, want_grad = reference.sparse(labels, logits)
                loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
                    labels=labels, logits=logits, return_grad=True)
                reference.assert_loss_close(loss, want_loss, np.float32)
                reference.assert_grad_close(grad, want_grad, np.float32)
                inplace = np.ascontiguousarray(logits)
                want = nn.sparse_softmax_cross_entropy_with_logits(
                    labels=labels, logits=inplace, return_grad=True)
                nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=inplace,
                                                            return_grad=True, grad_out=inplace)
                np.testing.assert_array_equal(inplace, want[1])
        finally:
            _kernels.set_path(PATHS[0])


@pytest.mark.parametrize("shape", [(3000, 7), (3000, 37), (3000, 100), (300, 2500)], ids=str)
def test_bit_identical_for_any_thread_count_on_every_path(path, rng, shape):
    logits = (rng.standard_normal(shape) * 5).astype(np.float32)
    labels = rng.integers(0, shape[1], shape[0])
    y = rng.random(shape).astype(np.float32)

    def results(n_threads):
        return [*nn.sparse_softmax_cross_entropy_with_logits(
                    labels=labels, logits=logits, return_grad=True, n_threads=n_threads),
                *nn.softmax_cross_entropy_with_logits(
                    labels=y, logits=logits, return_grad=True, return_labels_grad=True,
                    n_threads=n_threads),
                *nn.softmax_cross_entropy_with_logits(
                    labels=y, logits=logits, return_grad=True, n_threads=n_threads)]

    serial = results(1)
    for n_threads in (2, 3):
        for a, b in zip(serial, results(n_threads)):
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


# --- a long row split across threads ------------------------------------------------------

LONG = 3 * 32768 + 1234  # four parts of the class axis


@pytest.mark.parametrize("rows", [1, 3])
def test_class_axis_split_is_bit_identical_to_one_thread(path, rng, rows):
    logits = (rng.standard_normal((rows, LONG)) * 5).astype(np.float32)
    logits[0, 40000] = 30.0
    labels = rng.integers(0, LONG, rows)
    y = rng.random((rows, LONG)).astype(np.float32)
    results = {}
    for n_threads in (1, 2, 4):
        results[n_threads] = (
            *nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                         return_grad=True, n_threads=n_threads),
            *nn.softmax_cross_entropy_with_logits(labels=y, logits=logits, return_grad=True,
                                                  return_labels_grad=True, n_threads=n_threads))
    for n_threads in (2, 4):
        for a, b in zip(results[1], results[n_threads]):
            np.testing.assert_array_equal(a, b)
    want_loss, want_grad = reference.sparse(labels, logits)
    reference.assert_loss_close(results[1][0], want_loss, np.float32)
    reference.assert_grad_close(results[1][1], want_grad, np.float32)
    want_loss, want_grad, _ = reference.dense(y, logits)
    reference.assert_loss_close(results[1][2], want_loss, np.float32)


def test_split_rows_with_special_values(rng):
    logits = rng.standard_normal((2, LONG))
    logits[0, 70000:] = -np.inf   # whole parts of -inf
    logits[1, 5] = np.nan
    labels = np.array([3, 3])
    for n_threads in (1, 2):
        loss, grad = nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=True, n_threads=n_threads)
        want_loss, want_grad = reference.sparse(labels, logits)
        reference.assert_loss_close(loss, want_loss, np.float64)
        reference.assert_grad_close(grad, want_grad, np.float64)


# --- threads ---------------------------------------------------------------------------------

def test_threadpoolctl_limits_the_default_team():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _kernels.build_info()["max_threads"] == 1


def test_the_gil_is_released_during_a_call(rng):
    import threading
    import time

    logits = rng.standard_normal((4000, 10000)).astype(np.float32)
    labels = rng.integers(0, 10000, 4000)
    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                    return_grad=True, grad_out=logits,
                                                    n_threads=1)
        done.set()

    begin = time.perf_counter()
    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    stamps = []
    while not done.is_set():
        stamps.append(time.perf_counter())
    worker.join()
    elapsed = time.perf_counter() - begin
    longest_gap = max(np.diff([begin] + stamps + [time.perf_counter()]))
    # Holding the GIL would stop this loop for (nearly) the whole call.
    assert longest_gap < 0.5 * elapsed
