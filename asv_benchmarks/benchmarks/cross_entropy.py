"""asv benchmarks of fastxent: time, peak memory and the exp's accuracy, over the built-in
benchmark's workload, its sweep of the class count and dtype, and its small calls.

Run from asv_benchmarks/ as the README says: ``asv run --python=same --set-commit-hash
$(git rev-parse HEAD)`` (the installed fastxent, its results stored under that commit),
``asv continuous main HEAD`` (two commits compared), ``asv publish`` then ``asv preview``
(the HTML report). ``track_logits_gb_per_s`` gives each call's rate in GB/s.
"""

import time

import numpy as np

import fastxent
from fastxent._bench import workload
from fastxent._backends import _kernels

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


class ClassSweep:
    """Sparse labels at every class count of ``python -m fastxent bench``'s sweep, in every
    dtype, on one thread, about two million logits per call: a cliff between class counts
    shows as a jump in ``track_ns_per_logit``."""

    params = (list(workload.SWEEP_CLASSES), list(workload.SWEEP_DTYPES), ["loss", "loss+grad"])
    param_names = ["classes", "dtype", "mode"]
    timeout = 300

    def setup(self, classes, dtype, mode):
        try:
            dtype = workload.bench_dtype(dtype)
        except ValueError:   # bfloat16 without ml_dtypes: asv skips the case
            raise NotImplementedError("bfloat16 needs ml_dtypes") from None
        (shape, _), = workload.sweep_cases([classes], [dtype], workload.SWEEP_LOGITS)
        self.logits, self.labels = workload.make_inputs(shape, dtype)
        grad_out = np.full_like(self.logits, 0.0) if mode == "loss+grad" else None
        self.call = lambda: fastxent.nn.sparse_softmax_cross_entropy_with_logits(
            labels=self.labels, logits=self.logits, return_grad=grad_out is not None,
            grad_out=grad_out, n_threads=1)

    def time_call(self, classes, dtype, mode):
        self.call()

    def track_ns_per_logit(self, classes, dtype, mode):
        """The best of a few calls, per logit."""
        return _best_seconds(self.call) / self.logits.size * 1e9

    track_ns_per_logit.unit = "ns"


class SmallCalls:
    """Each common way of calling on a 64 x 10 minibatch (``python -m fastxent bench``'s
    small calls): its time, and its time over the plain call's."""

    params = list(workload.call_forms(*workload.make_inputs((2, 2), np.dtype(np.float32))))
    param_names = ["call"]

    def setup(self, form):
        logits, labels = workload.make_inputs(workload.CALLS_SHAPE, np.dtype(np.float32))
        self.forms = workload.call_forms(logits, labels)
        self.call, self.plain = self.forms[form], next(iter(self.forms.values()))

    def time_call(self, form):
        self.call()

    def track_times_the_plain_call(self, form):
        """Its best mean over batches of calls / the plain call's, measured side by side."""
        best = {}
        for name, call in (("plain", self.plain), ("this", self.call)) * 3:
            for _ in range(20):
                call()
            start = time.perf_counter()
            for _ in range(500):
                call()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        return best["this"] / best["plain"]

    track_times_the_plain_call.unit = "x"


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
