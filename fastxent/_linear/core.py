"""The compiled pass of ``fastxent.linear`` on NumPy (and CuPy, and SciPy sparse) data:
the problem checked once, then one pass over its blocks of rows per call.

On NumPy inputs the blocks are grouped into a fixed number of runs (slots), one thread at
a time per run, each with its own coef gradient, summed in run order at the end
(``fastxent/_backends/_linear_kernels.pxi``); every GEMM runs on one BLAS thread meanwhile. The
grouping depends on the shapes only, so the results are the same, bit for bit, for any
``n_threads``. When the coefficients are too large to hold one gradient per run
(``n_features * n_classes`` beyond a few million) there is one run, and BLAS gets the
threads instead. Without SciPy (whose BLAS the pass calls) or on CuPy arrays, a NumPy loop
does the same blocks.
"""

import contextlib

import numpy as np

from .._backends import backend_for
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
_SMALL_WORK = 1 << 21     # n * d * c below this: one thread unless BLAS is held (~0.2 ms)


def is_scipy_sparse(X):
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


class Data:
    """The fixed part of a linear problem: X, the labels, the weights and the options,
    checked once (``LinearObjective`` keeps one for all its calls). ``row_offset``: where
    these rows start in a larger X (a Dask block), for the position of a bad label."""

    def __init__(self, X, labels, num_classes, dtype, *, backend, sample_weight=None,
                 label_smoothing=0.0, class_weight=None, ignore_index=None, reduction="mean",
                 chunk_rows=None, n_threads=None, row_offset=None):
        _checks.refuse_unsupported(X=X, labels=labels, sample_weight=sample_weight)
        self.backend = backend
        xp = self.xp = backend.xp
        self.dtype = np.dtype(dtype)
        self.num_classes = int(num_classes)
        if self.num_classes < 1:
            raise ValueError("coef must have at least one class (column)")
        self._set_X(X)
        reduction = linear_reduction(reduction)
        self.n_threads = _checks.check_n_threads(n_threads)

        logits_shape = (self.n, self.num_classes)
        labels = given_array(xp, labels, "labels")
        self.weights = None
        if sample_weight is not None:
            w = given_array(xp, sample_weight, "sample_weight")
            if w.dtype.kind not in "biuf" or w.shape != (self.n,):
                raise ValueError(f"sample_weight must be {self.n} real numbers, got dtype "
                                 f"{w.dtype}, shape {w.shape}")
            self.weights = _checks.contiguous(w, np.float64, xp)
        self.sparse = labels.dtype.kind in "iu"
        if self.sparse:
            labels = _checks.sparse_labels_array(labels, logits_shape, xp)
            self.options = SparseOptions(
                _checks.ignore_index_value(ignore_index),
                _checks.class_weight_array(class_weight, self.num_classes, xp),
                _checks.label_smoothing_value(label_smoothing), self.num_classes, xp)
            self.labels = _checks.sparse_label_rows(
                labels, self.num_classes, backend, True, ignore_index=self.options.ignore_index,
                offsets=None if row_offset is None else (row_offset,))
            self.mass = self.options.row_mass(self.labels,
                                              1.0 if self.weights is None else self.weights)
            total = float(xp.sum(self.mass))
        else:
            if class_weight is not None or ignore_index is not None:
                raise ValueError("class_weight and ignore_index need integer labels")
            if labels.shape != logits_shape:
                raise ValueError(f"dense labels must have shape {logits_shape} (n_samples, "
                                 f"n_classes); got {labels.shape}")
            labels, _ = _checks.dense_labels_array(labels, logits_shape, self.dtype, xp)
            self.labels = _checks.contiguous(labels, self.dtype, xp)
            eps = _checks.label_smoothing_value(label_smoothing)
            self.label_coef = (1.0 - eps, eps / self.num_classes)
            a, b = self.label_coef
            self.mass = (a * self.labels.sum(axis=1, dtype=np.float64) + b * self.num_classes
                         ) * (1.0 if self.weights is None else self.weights)
            total = float(self.n if self.weights is None else xp.sum(self.weights))
        self.total = total   # what "mean" divides by
        self.denominator = total if reduction == "mean" else 1.0
        self._set_blocks(chunk_rows)
        self._scale = self._curvature = None

    def _set_X(self, X):
        xp = self.xp
        self.csr = None
        if is_scipy_sparse(X):
            if xp is not np:
                raise TypeError("a SciPy sparse X needs NumPy coef and labels")
            X = X.tocsr()
            if X.ndim != 2:
                raise ValueError(f"X must be (n_samples, n_features); got shape {X.shape}")
            if X.dtype.kind not in "biuf":
                raise TypeError(f"X must be real numbers, got dtype {X.dtype}")
            indptr = _checks.contiguous(X.indptr, np.int64)
            indices = _checks.contiguous(X.indices, np.int64)
            data = _checks.contiguous(X.data, self.dtype)
            nnz = data.shape[0]
            if (indptr.shape != (X.shape[0] + 1,) or indptr[0] != 0 or indptr[-1] != nnz
                    or indices.shape != (nnz,) or np.any(np.diff(indptr) < 0)
                    or (nnz and (indices.min() < 0 or indices.max() >= X.shape[1]))):
                raise ValueError("X is a malformed CSR matrix (indptr or indices out of range)")
            self.csr = (indptr, indices, data)
            self.X = X if X.dtype == self.dtype else X.astype(self.dtype)
        else:
            X = given_array(xp, X, "X")
            if X.ndim != 2:
                raise ValueError(f"X must be (n_samples, n_features); got shape {X.shape}")
            if X.dtype.kind not in "biuf":
                raise TypeError(f"X must be real numbers, got dtype {X.dtype}")
            X = X.astype(self.dtype, copy=False)
            if xp is np:
                item = self.dtype.itemsize
                if not (X.flags.aligned and (X.strides[1] == item or X.strides[0] == item
                                             or 0 in X.shape)):
                    X = X.copy(order="C")   # aligned too
            self.X = X
        self.n, self.n_features = X.shape

    def _set_blocks(self, chunk_rows):
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
        elif (isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer))
              or chunk_rows < 1):
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.chunk_rows = int(min(chunk_rows, max(self.n, 1)))
        n_blocks = -(-self.n // self.chunk_rows)
        self.n_slots = max(1, min(n_blocks, most_slots))
        ld = 1 if self.csr is not None else max(self.X.strides) // item
        self.compiled = (self.xp is np and max(self.n, d, c, ld, self.chunk_rows * c)
                         <= _INT32_MAX and _blas.bound())

    def parameters(self, coef, intercept, name="coef"):
        """``coef`` (and ``intercept``) checked against the data, in the compute type."""
        _checks.refuse_unsupported(**{name: coef, "intercept": intercept})
        xp = self.xp
        coef = given_array(xp, coef, name)
        if coef.shape != (self.n_features, self.num_classes):
            raise ValueError(f"X must be (n_samples, n_features) and {name} (n_features, "
                             f"n_classes); got X shape {(self.n, self.n_features)}, {name} "
                             f"shape {coef.shape}")
        if coef.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real numbers, got dtype {coef.dtype}")
        coef = _checks.contiguous(coef, self.dtype, xp)
        if intercept is not None:
            intercept = _checks.contiguous(given_array(xp, intercept, "intercept"),
                                           self.dtype, xp)
            if intercept.shape != (self.num_classes,):
                raise ValueError(f"intercept must have shape ({self.num_classes},), got "
                                 f"{intercept.shape}")
        return coef, intercept

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

    def threads(self, held=None):
        """(threads over the runs, threads over a block's rows, BLAS threads or None to
        leave BLAS as it is) of one compiled pass; ``held``: the count an enclosing block
        holds BLAS at (``_blas.held()``)."""
        from .._backends._kernels import default_threads

        wanted = self.n_threads or default_threads()
        work = self.n * self.n_features * self.num_classes
        if wanted == 1 and self.n_slots > 1 or not _blas.can_limit() \
                or (work < _SMALL_WORK and held != 1):
            # Small calls keep off BLAS's settings: setting its count back up after each
            # call wakes its pool, which then spins against the next call's threads.
            return 1, 1, None
        if self.n_slots == 1:
            return 1, wanted, wanted         # the coefficients are large: BLAS's threads
        return min(wanted, self.n_slots), 1, 1

    def threads_held(self):
        """BLAS's threads held at what each compiled pass of this data sets them to."""
        if not self.compiled:
            return contextlib.nullcontext()
        return _blas.threads(self.threads(held=1)[2] or 1)

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
        a, b = (1.0, 0.0) if self.sparse else self.label_coef
        options = self.options.kernel_options() if self.sparse else {}
        slot_threads, row_threads, blas_threads = self.threads(_blas.held())
        with (contextlib.nullcontext() if blas_threads is None else _blas.threads(blas_threads)):
            linear_pass(
                x, indptr, indices, coef, intercept, self.labels, a, b, self.scale(), curvature,
                v_coef, v_intercept if intercept is not None else None, slot_coef,
                slot_intercept, slot_loss, grad_X, row_losses, self.n, self.chunk_rows,
                slot_threads, row_threads, **options)
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
                                    block_scale, self.n_threads, **self.options.kernel_options())
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


def linear_reduction(reduction):
    """``"mean"`` or ``"sum"`` from any of their names (``Reduction.MEAN`` and
    ``Reduction.SUM`` included), else ValueError."""
    from .._core.checks import Reduction

    try:
        key = Reduction.validate(reduction)
    except ValueError:
        key = None
    names = {Reduction.MEAN: "mean", Reduction.SUM: "sum"}
    if key not in names:
        raise ValueError(f"reduction must be 'mean' or 'sum' (Reduction.MEAN, Reduction.SUM), "
                         f"got {reduction!r}")
    return names[key]


def given_array(xp, value, name):
    if value is None:
        raise ValueError(f"{name} must be given, got None")
    return xp.asarray(value)


def compute_dtype(*dtypes):
    return np.dtype(np.float32 if all(d == np.float32 for d in dtypes) else np.float64)


def problem(X, coef, labels, intercept, sample_weight, **options):
    """The checked data and parameters of one call."""
    backend = backend_for(X=None if is_scipy_sparse(X) else X, coef=coef, labels=labels,
                          intercept=intercept, sample_weight=sample_weight)
    xp = backend.xp
    coef_array = given_array(xp, coef, "coef")
    if coef_array.ndim != 2:
        raise ValueError(f"X must be (n_samples, n_features) and coef (n_features, "
                         f"n_classes); got coef shape {coef_array.shape}")
    if coef_array.dtype.kind not in "biuf":
        raise TypeError(f"coef must be real numbers, got dtype {coef_array.dtype}")
    x_dtype = X.dtype if is_scipy_sparse(X) else np.asarray(X).dtype if xp is np else X.dtype
    data = Data(X, labels, coef_array.shape[1], compute_dtype(x_dtype, coef_array.dtype),
                 backend=backend, sample_weight=sample_weight, **options)
    return data, data.parameters(coef_array, intercept)


def check_l2(l2_reg):
    l2 = float(l2_reg)
    if not (l2 >= 0 and np.isfinite(l2)):
        raise ValueError(f"l2_reg must be a finite number >= 0, got {l2_reg!r}")
    return l2


def with_penalty(xp, coef, l2, total, grad_coef, grad_intercept, grad_X, return_grad,
                  return_grad_X):
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




def hessp(data, coef, intercept, v_coef, v_intercept, l2):
    """``linear_cross_entropy_hessp`` on checked data and parameters."""
    v_coef, _ = data.parameters(v_coef, None, name="v_coef")
    if intercept is not None:
        if v_intercept is None:
            raise ValueError("v_intercept must be given with intercept")
        v_intercept = _checks.contiguous(data.xp.asarray(v_intercept), data.dtype, data.xp)
        if v_intercept.shape != (data.num_classes,):
            raise ValueError(f"v_intercept must have shape ({data.num_classes},), got "
                             f"{v_intercept.shape}")
    h_coef, h_intercept = data.run(coef, intercept, False, False, hessp=(v_coef, v_intercept))
    if l2:
        h_coef += l2 * v_coef
    return h_coef, h_intercept


def non_finite(X):
    """Whether a block of X holds a NaN, and an infinity: counts of 0 or 1."""
    values = X.data if is_scipy_sparse(X) else X   # NumPy or CuPy: the ufuncs dispatch
    return np.array([int(np.isnan(values).any()), int(np.isinf(values).any())], np.int64)


def refuse_non_finite(counts):
    """scikit-learn's errors for an X with NaN or infinity (``check_array``'s words)."""
    if counts[0]:
        raise ValueError("Input X contains NaN.")
    if counts[1]:
        raise ValueError("Input X contains infinity or a value too large for "
                         "dtype('float64').")
