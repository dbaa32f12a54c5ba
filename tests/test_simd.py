"""The kernel paths: every instruction set this CPU has, against the reference.

Each path (AVX-512, AVX2+FMA, the SSE2/plain baseline) is the same C source
compiled with other flags; the tests switch paths in-process with
``fastxent._kernels.set_path``.
"""

import os
import pathlib
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

import reference
from fastxent import _kernels, losses, nn
from fastxent._isa import isa_list

PATHS = _kernels.paths()
SOURCE = pathlib.Path(__file__).resolve().parent.parent / "fastxent" / "_src"

# Maximum exp error in ulps of the result, measured over the inputs the kernels
# feed it (docs/ACCURACY.md); the bounds leave a small margin over the figures.
EXP_ULP_BOUND = {np.float32: 2.5, np.float64: 1.5}


@pytest.fixture(params=PATHS)
def path(request):
    previous = _kernels.path()
    _kernels.set_path(request.param)
    yield request.param
    _kernels.set_path(previous)


def test_paths_best_first_and_baseline_last():
    assert _kernels.path() == PATHS[0]
    assert PATHS[-1] in ("sse2", "plain")
    with pytest.raises(ValueError, match="not supported"):
        _kernels.set_path("avx1024")


@pytest.mark.parametrize("requested", PATHS + ["baseline", "bogus"])
def test_environment_chooses_the_path(tmp_path, requested):
    run = subprocess.run(
        [sys.executable, "-c", "import fastxent._kernels as k; print(k.path())"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "FASTXENT_CPU_PATH": requested})
    assert run.returncode == 0, run.stderr
    if requested == "bogus":
        assert run.stdout.strip() == PATHS[0] and "FASTXENT_CPU_PATH" in run.stderr
    else:
        assert run.stdout.strip() == (PATHS[-1] if requested == "baseline" else requested)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_error_in_ulps(path, dtype):
    lowest = -104.0 if dtype == np.float32 else -746.0
    tiny = np.finfo(dtype).eps / 4
    x = np.concatenate([np.linspace(lowest, 0, 400_001, dtype=dtype),
                        -np.logspace(np.log10(tiny), 0, 20_001).astype(dtype),
                        np.array([0.0, -0.0, -np.inf], dtype)])
    got = np.empty_like(x)
    _kernels.exp_nonpositive(x, got)
    want = np.exp(x.astype(np.longdouble))
    spacing = np.maximum(np.abs(np.spacing(want.astype(dtype))).astype(np.longdouble),
                         np.finfo(dtype).smallest_subnormal)
    ulps = np.abs(got.astype(np.longdouble) - want) / spacing
    assert ulps.max() <= EXP_ULP_BOUND[dtype]
    assert got[-1] == 0.0 and got[-2] == 1.0 and got[-3] == 1.0


def test_exp_keeps_nan(path):
    for dtype in (np.float32, np.float64):
        x = np.array([np.nan, -1.0, np.nan], dtype)
        got = np.empty_like(x)
        _kernels.exp_nonpositive(x, got)
        assert np.isnan(got[0]) and np.isnan(got[2])
        assert abs(got[1] - np.exp(-1.0)) < 1e-6


# Shapes chosen to hit the block kernels (rows in lanes: C <= 2 * lanes with at
# least a block of rows), their remainder rows, one or two column tiles, vector
# tails of every length, and rows longer than one chunk.
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


# --- the C source builds everywhere, without warnings ------------------------------------------

def _compilers():
    """(entry, compiler) for every entry of the ISA list this machine can compile: the
    native gcc for its own machine's entries, the aarch64 cross gcc for ARM's."""
    machine = platform.machine()
    for isa in isa_list():
        if isa.builds_on(machine):
            yield pytest.param(isa, "gcc", id=isa.name)
        elif isa.builds_on("aarch64"):
            yield pytest.param(isa, "aarch64-linux-gnu-gcc", id=f"{isa.name}-cross")


@pytest.mark.skipif(not (SOURCE / "fx_kernels.c").exists(), reason="needs the source tree")
@pytest.mark.parametrize("isa, compiler", list(_compilers()))
def test_kernel_source_compiles_cleanly(tmp_path, isa, compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    run = subprocess.run([compiler, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c",
                          str(SOURCE / "fx_kernels.c"), "-o", str(tmp_path / "k.o"),
                          f"-DFX_ISA={isa.name}", *isa.flags],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
