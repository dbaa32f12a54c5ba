"""asv benchmarks of fastxent: time, peak memory and the exp's accuracy.

Run from asv_benchmarks/ as the README says: ``asv run --python=same --set-commit-hash
$(git rev-parse HEAD)`` (the installed fastxent, its results stored under that commit),
``asv continuous main HEAD`` (two commits compared), ``asv publish`` then ``asv preview``
(the HTML report). ``track_logits_gb_per_s`` gives each call's rate in GB/s.
"""

import time

import numpy as np

import fastxent
from fastxent import _kernels

SHAPES = ["65536x10:float32", "8192x1000:float32", "1024x32000:float32",
          "128x128256:float32", "100000x10:float64"]


def _inputs(case):
    shape, _, dtype = case.partition(":")
    rows, cols = (int(v) for v in shape.split("x"))
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((rows, cols), dtype=np.float32) * 3).astype(dtype)
    labels = rng.integers(0, cols, rows)
    return logits, labels


def _best_seconds(call, repeats=7):
    """The fastest of ``repeats`` timed calls after one warm-up (asv's ``track_``
    benchmarks time themselves)."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


class CrossEntropy:
    """One fused call: sparse or dense labels, loss or loss + gradient, 1 or all threads."""

    params = (SHAPES, ["sparse", "dense"], ["loss", "loss+grad"], [1, None])
    param_names = ["shape", "labels", "mode", "n_threads"]
    timeout = 300

    def setup(self, shape, labels, mode, n_threads):
        self.logits, self.labels = _inputs(shape)
        self.grad = mode == "loss+grad"
        # np.full touches every page: no first-touch page faults inside the timed call
        self.grad_out = np.full_like(self.logits, 0.0) if self.grad else None
        if labels == "sparse":
            self.call = lambda: fastxent.nn.sparse_softmax_cross_entropy_with_logits(
                labels=self.labels, logits=self.logits, return_grad=self.grad,
                grad_out=self.grad_out, n_threads=n_threads)
        else:
            self.onehot = np.full_like(self.logits, 0.0)
            self.onehot[np.arange(len(self.labels)), self.labels] = 1
            self.call = lambda: fastxent.nn.softmax_cross_entropy_with_logits(
                labels=self.onehot, logits=self.logits, return_grad=self.grad,
                grad_out=self.grad_out, n_threads=n_threads)

    def time_call(self, shape, labels, mode, n_threads):
        self.call()

    def peakmem_call(self, shape, labels, mode, n_threads):
        self.call()

    def track_logits_gb_per_s(self, shape, labels, mode, n_threads):
        """The same call as a rate: bytes of logits / the best of a few timed calls."""
        return self.logits.nbytes / _best_seconds(self.call) / 1e9

    track_logits_gb_per_s.unit = "GB/s"


class ReducedLoss:
    """The weighted, reduced losses with their gradient in place."""

    params = (["8192x1000:float32", "65536x10:float32"], ["weighted_mean", "weighted_sum"])
    param_names = ["shape", "reduction"]

    def setup(self, shape, reduction):
        self.logits, self.labels = _inputs(shape)
        self.weights = np.random.default_rng(1).random(len(self.labels))

    def time_sparse_loss_and_grad_in_place(self, shape, reduction):
        fastxent.losses.sparse_softmax_cross_entropy(
            self.labels, self.logits, self.weights, reduction=reduction, return_grad=True,
            grad_out=self.logits)


class ExpAccuracy:
    """Maximum error of each kernel path's vector exp, in ulps, over its input range."""

    params = (_kernels.paths(), ["float32", "float64"])
    param_names = ["path", "dtype"]
    unit = "ulp"

    def track_exp_max_ulp(self, path, dtype):
        previous = _kernels.path()
        _kernels.set_path(path)
        try:
            dtype = np.dtype(dtype)
            lowest = -104.0 if dtype == np.float32 else -746.0
            x = np.linspace(lowest, 0, 1_000_001, dtype=dtype)
            got = np.empty_like(x)
            _kernels.exp_nonpositive(x, got)
        finally:
            _kernels.set_path(previous)
        want = np.exp(x.astype(np.longdouble))
        spacing = np.maximum(np.abs(np.spacing(want.astype(dtype))).astype(np.longdouble),
                             np.finfo(dtype).smallest_subnormal)
        return float((np.abs(got.astype(np.longdouble) - want) / spacing).max())
