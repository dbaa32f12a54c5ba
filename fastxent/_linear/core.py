"""The compiled pass of ``fastxent.linear`` on NumPy (and CuPy, and SciPy sparse) data:
the problem checked once, then one pass over its blocks of rows per call.

On NumPy inputs the blocks are grouped into a fixed number of runs (slots), one thread at
a time per run, each with its own coef gradient, summed in run order at the end
(``fastxent/_backends/_linear_kernels.pxi``); every GEMM runs on one BLAS thread meanwhile.
The grouping depends on the shapes only, so the results are the same, bit for bit, for any
``n_threads``. When the coefficients are too large to hold one gradient per run
(``n_features * n_classes`` beyond a few million) there is one run, and BLAS gets the
threads instead. Without SciPy (whose BLAS the pass calls) or on CuPy arrays, a NumPy loop
does the same blocks.
"""

import numpy as np

from .._core import checks as _checks
from .._core.options import SparseOptions
from . import blas as _blas

_BLOCK_ROWS = 256         # rows per block (measured best for OpenBLAS's GEMMs, docs/BENCHMARKS.md)
_BLOCK_X_BYTES = 1 << 19  # but at most 512 KB of X, in cache for the block's second GEMM
_BLOCK_ENTRIES = 1 << 21  # and 2**21 logits
_SLOT_BYTES = 1 << 24     # the runs' coef gradients together, at most
_MAX_SLOTS = 64
_LARGE_BLOCK_ROWS = 512       # one run (large coefficients): bigger blocks, fewer reads of coef
_LARGE_BLOCK_ENTRIES = 1 << 24  # 64 MB of float32 logits
_INT32_MAX = 2**31 - 1    # SciPy's BLAS takes 32-bit sizes


class Data:
    """The fixed part of a linear problem laid out for the pass: X, the labels, the weights
    and the options of a ``checks.linear_problem`` (``LinearObjective`` keeps one for all
    its calls); ``compiled``: whether the compiled pass (SciPy's BLAS) runs it."""

    def __init__(self, checked, num_classes, dtype, backend, options, mass, compiled):
        self.backend, self.xp = backend, backend.xp
        self.dtype, self.num_classes = np.dtype(dtype), int(num_classes)
        self.X, self.csr = checked["X"], checked["csr"]
        self.n, self.n_features = self.X.shape
        self.labels, self.sparse = checked["labels"], checked["sparse"]
        self.weights, self.n_threads = checked["weights"], checked["n_threads"]
        self.options, self.mass = options, mass
        if self.sparse:
            self.total = float(self.xp.sum(self.mass))   # what "mean" divides by
            self.label_coef = (1.0, 0.0)
        else:
            a, b = self.label_coef = (1.0 - checked["eps"], checked["eps"] / self.num_classes)
            self.mass = (a * self.labels.sum(axis=1, dtype=np.float64) + b * self.num_classes
                         ) * (1.0 if self.weights is None else self.weights)
            self.total = float(self.n if self.weights is None else self.xp.sum(self.weights))
        self.denominator = self.total if checked["reduction"] == "mean" else 1.0
        self.l2, self.kernel_options = checked["l2"], checked.get("kernel_options", {})
        self._set_blocks(checked["chunk_rows"], compiled)
        self._scale = self._curvature = None

    def _set_blocks(self, chunk_rows, compiled):
        d, c, item = self.n_features, self.num_classes, self.dtype.itemsize
        most_slots = min(_MAX_SLOTS, _SLOT_BYTES // max(1, d * c * item))
        if chunk_rows is None:
            if most_slots <= 1:
                # One run: GEMMs as large as the buffer allows, BLAS's threads on them.
                chunk_rows = max(1, min(_LARGE_BLOCK_ROWS, _LARGE_BLOCK_ENTRIES // c))
            else:
                row_bytes = (item * d if self.csr is None
                             else (item + 8) * max(1, self.csr[2].shape[0] // max(1, self.n)))
                chunk_rows = max(16, min(_BLOCK_ROWS, _BLOCK_X_BYTES // max(1, row_bytes)))
                chunk_rows = min(chunk_rows, max(1, _BLOCK_ENTRIES // c))
        self.chunk_rows = int(min(chunk_rows, max(self.n, 1)))
        n_blocks = -(-self.n // self.chunk_rows)
        self.n_slots = max(1, min(n_blocks, most_slots))
        ld = 1 if self.csr is not None else max(self.X.strides) // item
        self.compiled = (compiled and self.xp is np
                         and max(self.n, d, c, ld, self.chunk_rows * c) <= _INT32_MAX)

    def parameters(self, coef, intercept, name="coef"):
        """``coef`` (and ``intercept``) checked against the problem, in the compute type."""
        return _checks.linear_parameters(coef, intercept, self.n_features, self.num_classes,
                                         self.dtype, self.xp, name)

    def scale(self):
        """``w_i / denominator``: one float64 per row, or one for all."""
        if self._scale is None:
            if self.denominator == 0:
                self._scale = np.zeros(1)
            elif self.weights is None:
                self._scale = np.full(1, 1.0 / self.denominator)
            else:
                self._scale = self.weights / self.denominator
        return self._scale

    def curvature(self):
        """Per-row factor ``c_i`` of the logits Hessian ``c_i (diag(p) - p p^T)``."""
        if self._curvature is None:
            den = self.denominator if self.denominator else np.inf
            if self.sparse:
                self._curvature = self.options.curvature(
                    self.labels, 1.0 if self.weights is None else self.weights) / den
            else:
                self._curvature = self.mass / den
            self._curvature = self.xp.ascontiguousarray(
                self.xp.broadcast_to(self._curvature, (self.n,)), dtype=np.float64)
        return self._curvature

    def threads(self, holding=False):
        """(threads over the runs, threads over a block's rows, BLAS's threads or None) of
        one compiled pass (``blas.pass_threads``)."""
        return _blas.pass_threads(self.n_threads, self.n_slots,
                                  self.n * self.n_features * self.num_classes, holding)

    def threads_held(self):
        """BLAS's threads held at what each compiled pass of this data sets them to."""
        return _blas.threads(self.threads(holding=True)[2] or 1 if self.compiled else None)

    def run(self, coef, intercept, want_grad_coef, want_grad_X, row_losses=None, hessp=None):
        """One pass: the weighted loss sum, the gradients asked for (of coef, of the
        intercept when there is one, of X), and into ``row_losses`` (float64, n_samples)
        each row's loss. With ``hessp=(v_coef, v_intercept)``, the Hessian times it
        instead of the gradients (``(h_coef, h_intercept)``)."""
        if want_grad_X and self.csr is not None:
            raise ValueError("the gradient of X needs a dense X")
        if self.compiled:
            return self._compiled(coef, intercept, want_grad_coef, want_grad_X, row_losses,
                                  hessp)
        if hessp is not None:
            return self._hessp_loop(coef, intercept, *hessp)
        return self._loop(coef, intercept, want_grad_coef, want_grad_X, row_losses)

    def _compiled(self, coef, intercept, want_grad_coef, want_grad_X, row_losses, hessp):
        from .._backends._kernels import linear_pass

        d, c, slots = self.n_features, self.num_classes, self.n_slots
        want_slots = want_grad_coef or hessp is not None
        slot_coef = np.empty((slots, d, c), self.dtype) if want_slots else None
        slot_intercept = (np.empty((slots, c)) if want_slots and intercept is not None
                          else None)
        slot_loss = np.empty(slots)
        grad_X = np.empty((self.n, d), self.dtype) if want_grad_X else None
        curvature = v_coef = v_intercept = None
        if hessp is not None:
            curvature = self.curvature()
            v_coef, v_intercept = hessp
        x, indptr, indices = self.X, None, None
        if self.csr is not None:
            indptr, indices, x = self.csr
        a, b = self.label_coef
        scale = self.scale()
        slot_threads, row_threads, blas_threads = self.threads()
        with _blas.threads(blas_threads):
            linear_pass(
                x, indptr, indices, coef, intercept, self.labels, a, b, scale, curvature,
                v_coef, v_intercept if intercept is not None else None, slot_coef,
                slot_intercept, slot_loss, grad_X, row_losses, self.n, self.chunk_rows,
                slot_threads, row_threads, **self.kernel_options)
        g_coef = slot_coef[0] if want_slots else None
        g_intercept = slot_intercept[0].astype(self.dtype) if slot_intercept is not None else None
        if hessp is not None:
            return g_coef, g_intercept
        return float(slot_loss[0]), g_coef, g_intercept, grad_X

    # --- the NumPy (and CuPy) loop: no compiled pass for these arrays, or no SciPy ---------

    def _blocks(self):
        for start in range(0, self.n, self.chunk_rows):
            yield start, min(start + self.chunk_rows, self.n)

    def _logits(self, start, stop, coef, intercept, out):
        z = out[:stop - start]
        X = self.X[start:stop]
        if self.csr is not None:
            z[...] = X @ coef
        else:
            self.xp.matmul(X, coef, out=z)
        if intercept is not None:
            z += intercept
        return z

    def _loop(self, coef, intercept, want_grad_coef, want_grad_X, row_losses):
        xp, backend = self.xp, self.backend
        want_grad = want_grad_coef or want_grad_X
        buffer = xp.empty((self.chunk_rows, self.num_classes), self.dtype)
        total = xp.zeros((), np.float64)
        grad_coef = xp.zeros(coef.shape, self.dtype) if want_grad_coef else None
        grad_intercept = (xp.zeros(self.num_classes, self.dtype)
                          if want_grad_coef and intercept is not None else None)
        grad_X = xp.empty(self.X.shape, self.dtype) if want_grad_X else None
        scale = xp.asarray(self.scale())
        for start, stop in self._blocks():
            z = self._logits(start, stop, coef, intercept, buffer)
            rows = (xp.empty(stop - start, np.float64) if row_losses is None
                    else row_losses[start:stop])
            w = scale if scale.shape[0] == 1 else scale[start:stop]
            block_scale = xp.ascontiguousarray(xp.broadcast_to(w, (stop - start,)))
            if self.sparse:
                backend.sparse_rows(z, self.labels[start:stop], rows, z if want_grad else None,
                                    block_scale, self.n_threads, **self.kernel_options)
            else:
                a, b = self.label_coef
                backend.dense_rows(z, self.labels[start:stop], rows, z if want_grad else None,
                                   None, a, b, block_scale, self.n_threads)
            total = total + xp.sum(rows * block_scale)
            if want_grad_coef:
                grad_coef += self.X[start:stop].T @ z
                if grad_intercept is not None:
                    grad_intercept += z.sum(axis=0)
            if want_grad_X:
                xp.matmul(z, coef.T, out=grad_X[start:stop])
        return (float(total) if xp is np else total), grad_coef, grad_intercept, grad_X

    def _hessp_loop(self, coef, intercept, v_coef, v_intercept):
        xp = self.xp
        h_coef = xp.zeros(coef.shape, self.dtype)
        h_intercept = xp.zeros(self.num_classes, self.dtype) if intercept is not None else None
        buffer = xp.empty((self.chunk_rows, self.num_classes), self.dtype)
        curvature = self.curvature()
        for start, stop in self._blocks():
            p = self._logits(start, stop, coef, intercept, buffer)
            p -= p.max(axis=1, keepdims=True)
            xp.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
            r = xp.asarray(self.X[start:stop] @ v_coef)
            if intercept is not None:
                r += v_intercept
            r -= (p * r).sum(axis=1, keepdims=True)
            q = r
            q *= p
            q *= curvature[start:stop].astype(self.dtype).reshape(-1, 1)
            h_coef += self.X[start:stop].T @ q
            if h_intercept is not None:
                h_intercept += q.sum(axis=0)
        return h_coef, h_intercept


def problem(X, coef, labels, intercept, sample_weight, *, backend, num_classes=None,
            **options):
    """The checked data and parameters (None without ``coef``; then ``num_classes`` is
    given) of one call on ``backend``'s arrays; ``options``: ``checks.linear_problem``'s."""
    xp = backend.xp
    if coef is not None:
        coef = _checks.real_matrix(coef, "coef", xp, "(n_features, n_classes)")
        num_classes = coef.shape[1]
    x_dtype = X.dtype if _checks.is_scipy_sparse(X) or xp is not np else np.asarray(X).dtype
    dtype = _checks.linear_dtype(x_dtype, x_dtype if coef is None else coef.dtype)
    checked = _checks.linear_problem(X, labels, num_classes, dtype, xp, backend,
                                     sample_weight=sample_weight, **options)
    if coef is not None:
        coef = _checks.linear_parameters(coef, intercept, checked["X"].shape[1], num_classes,
                                         dtype, xp)
    options = mass = None
    if checked["sparse"]:
        options = SparseOptions(checked["ignore_index"], checked["class_weight"],
                                checked["eps"], num_classes, xp)
        mass = options.row_mass(checked["labels"],
                                1.0 if checked["weights"] is None else checked["weights"])
        checked["kernel_options"] = options.kernel_options()
    return Data(checked, num_classes, dtype, backend, options, mass, _blas.bound()), coef


def with_penalty(xp, coef, l2, total, grad_coef, grad_intercept, grad_X, return_grad,
                 return_grad_X):
    """The loss plus ``l2 / 2 ||coef||^2`` and the results asked for (the coef gradient
    penalized in place)."""
    if l2:
        total = total + 0.5 * l2 * xp.sum(coef.astype(np.float64) ** 2)
        if return_grad:
            grad_coef += l2 * coef
    loss = float(total) if xp is np else total
    result = (loss,)
    if return_grad:
        result += (grad_coef, grad_intercept)
    if return_grad_X:
        result += (grad_X,)
    return result if len(result) > 1 else loss


def direction(data, intercept, v_coef, v_intercept):
    """The direction ``(v_coef, v_intercept)`` of a Hessian product, checked against the
    problem (``v_intercept`` is needed with an intercept and ignored without)."""
    v_coef, _ = data.parameters(v_coef, None, name="v_coef")
    if intercept is None:
        return v_coef, None
    if v_intercept is None:
        raise ValueError("v_intercept must be given with intercept")
    return data.parameters(v_coef, v_intercept)


def hessp(data, coef, intercept, v_coef, v_intercept):
    """``linear_cross_entropy_hessp`` on checked data and parameters."""
    v_coef, v_intercept = direction(data, intercept, v_coef, v_intercept)
    h_coef, h_intercept = data.run(coef, intercept, False, False, hessp=(v_coef, v_intercept))
    if data.l2:
        h_coef += data.l2 * v_coef
    return h_coef, h_intercept


def non_finite(X):
    """Whether a block of X holds a NaN, and an infinity: counts of 0 or 1."""
    values = X.data if _checks.is_scipy_sparse(X) else X   # NumPy or CuPy: the ufuncs dispatch
    return np.array([int(np.isnan(values).any()), int(np.isinf(values).any())], np.int64)


def refuse_non_finite(counts):
    """scikit-learn's errors for an X with NaN or infinity (``check_array``'s words)."""
    if counts[0]:
        raise ValueError("Input X contains NaN.")
    if counts[1]:
        raise ValueError("Input X contains infinity or a value too large for "
                         "dtype('float64').")
