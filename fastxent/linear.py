"""Fused linear cross-entropy: the loss, gradient and Hessian-vector product of a
multinomial linear model, ``logits = X @ coef + intercept``, a block of rows at a time.

Each block's logits come from one BLAS product into a reused buffer; the fused
kernel then writes the loss and, over the same buffer, the gradient with respect to
the logits, from which two more products give the gradients of ``coef`` and
``intercept`` (and of ``X`` on request). The whole N x C logits never exist.

The objective, for per-row losses ``l_i`` (sparse or dense labels, with the options
of :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`) and row weights
``w_i`` (``sample_weight``, 1 without)::

    f = sum_i w_i l_i / denominator + l2_reg / 2 * ||coef||^2

``denominator`` is 1 for ``reduction="sum"``; for ``"mean"`` it is ``sum(w_i)``
over the rows not ignored, times their class weight with ``class_weight``
(PyTorch's mean). With ``reduction="mean"`` and ``l2_reg = 1 / (C * sum(w))``
this is scikit-learn's ``LogisticRegression`` objective (multinomial, lbfgs).
"""

import numpy as np

from . import _checks
from ._backend import backend_for, is_lazy
from ._options import SparseOptions

__all__ = ["LinearObjective", "linear_cross_entropy", "linear_cross_entropy_hessp"]

_BLOCK_ENTRIES = 1 << 21  # logits per block at most, by default: 8 MB of float32
_BLOCK_X_BYTES = 1 << 21  # and rows of X per block: about 2 MB, to stay in cache


class _Problem:
    """The checked inputs of one call, and the per-block pieces of the objective."""

    def __init__(self, X, coef, labels, intercept, sample_weight, label_smoothing,
                 class_weight, ignore_index, l2_reg, reduction, chunk_rows, n_threads):
        if is_lazy(X, coef, labels, intercept, sample_weight):
            raise NotImplementedError("linear_cross_entropy does not take Dask arrays")
        self.backend = backend_for(X=X, coef=coef, labels=labels, intercept=intercept,
                                   sample_weight=sample_weight)
        xp = self.xp = self.backend.xp
        X, coef = _given_array(xp, X, "X"), _given_array(xp, coef, "coef")
        if X.ndim != 2 or coef.ndim != 2 or coef.shape[0] != X.shape[1]:
            raise ValueError(f"X must be (n_samples, n_features) and coef (n_features, "
                             f"n_classes); got X shape {X.shape}, coef shape {coef.shape}")
        for name, a in (("X", X), ("coef", coef)):
            if a.dtype.kind not in "biuf":
                raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
        self.dtype = np.dtype(np.float32 if X.dtype == coef.dtype == np.float32 else np.float64)
        self.X = X.astype(self.dtype, copy=False)
        self.coef = coef.astype(self.dtype, copy=False)
        self.n, self.num_classes = X.shape[0], coef.shape[1]
        if self.num_classes == 0:
            raise ValueError("coef must have at least one class (column)")
        self.intercept = None
        if intercept is not None:
            self.intercept = _given_array(xp, intercept, "intercept").astype(self.dtype)
            if self.intercept.shape != (self.num_classes,):
                raise ValueError(f"intercept must have shape ({self.num_classes},), got "
                                 f"{self.intercept.shape}")
        self.l2_reg = float(l2_reg)
        if not (self.l2_reg >= 0 and np.isfinite(self.l2_reg)):
            raise ValueError(f"l2_reg must be a finite number >= 0, got {l2_reg!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        # One kernel thread by default: BLAS does most of the work with its own threads,
        # and two spinning thread pools on the same cores slow both down many times over.
        self.n_threads = 1 if n_threads is None else _checks.check_n_threads(n_threads)
        if chunk_rows is None:
            chunk_rows = max(1, min(_BLOCK_ENTRIES // self.num_classes,
                                    max(256, _BLOCK_X_BYTES // max(1, X.shape[1] * X.itemsize))))
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
                or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.chunk_rows = int(min(chunk_rows, max(self.n, 1)))

        logits_shape = (self.n, self.num_classes)
        labels = _given_array(xp, labels, "labels")
        self.weights = None
        if sample_weight is not None:
            w = _given_array(xp, sample_weight, "sample_weight")
            if w.dtype.kind not in "biuf" or w.shape != (self.n,):
                raise ValueError(f"sample_weight must be {self.n} real numbers, got dtype "
                                 f"{w.dtype}, shape {w.shape}")
            self.weights = w.astype(np.float64)
        self.sparse = labels.dtype.kind in "iu"
        if self.sparse:
            labels = _checks.sparse_labels_array(labels, logits_shape, xp)
            self.options = SparseOptions(ignore_index, class_weight, label_smoothing,
                                         self.num_classes, xp)
            self.labels = _checks.sparse_label_rows(labels, self.num_classes, self.backend, True,
                                                    ignore_index=self.options.ignore_index)
            mass = self.options.row_mass(self.labels,
                                         1.0 if self.weights is None else self.weights)
            total = float(xp.sum(mass))
        else:
            if class_weight is not None or ignore_index is not None:
                raise ValueError("class_weight and ignore_index need integer labels")
            if labels.shape != logits_shape:
                raise ValueError(f"dense labels must have shape {logits_shape} (n_samples, "
                                 f"n_classes); got {labels.shape}")
            self.labels, _ = _checks.dense_labels_array(labels, logits_shape, self.dtype, xp)
            eps = _checks.label_smoothing_value(label_smoothing)
            self.label_coef = (1.0 - eps, eps / self.num_classes)
            total = float(self.n if self.weights is None else xp.sum(self.weights))
        self.denominator = total if reduction == "mean" else 1.0

    def blocks(self):
        for start in range(0, self.n, self.chunk_rows):
            yield start, min(start + self.chunk_rows, self.n)

    def row_weights(self, start, stop):
        """``w_i / denominator`` for a block (a scalar without sample weights)."""
        if self.denominator == 0:
            return 0.0
        if self.weights is None:
            return 1.0 / self.denominator
        return self.weights[start:stop] / self.denominator

    def logits(self, start, stop, out):
        xp = self.xp
        z = out[:stop - start]
        xp.matmul(self.X[start:stop], self.coef, out=z)
        if self.intercept is not None:
            z += self.intercept
        return z

    def loss_and_logits_grad(self, start, stop, z, want_grad, row_loss=None):
        """The block's weighted loss sum (float64), with ``z`` overwritten by the
        gradient of it with respect to the logits when ``want_grad``; ``row_loss``, when
        given, receives the block's per-row losses (float64, unweighted)."""
        xp, backend = self.xp, self.backend
        w = self.row_weights(start, stop)
        if row_loss is None:
            row_loss = xp.empty(stop - start, np.float64)
        scale = xp.ascontiguousarray(
            xp.broadcast_to(xp.asarray(w, dtype=np.float64), (stop - start,)))
        if self.sparse:
            backend.sparse_rows(z, self.labels[start:stop], row_loss, z if want_grad else None,
                                scale, self.n_threads, **self.options.kernel_options())
        else:
            a, b = self.label_coef
            backend.dense_rows(z, self.labels[start:stop], row_loss, z if want_grad else None,
                               None, a, b, scale, self.n_threads)
        if self.denominator == 0:
            return xp.zeros((), np.float64)
        return xp.sum(row_loss * w)

    def curvature(self, start, stop):
        """Per-row factor ``c_i`` of the logits Hessian ``c_i (diag(p) - p p^T)``."""
        w = self.row_weights(start, stop)
        if self.sparse:
            return self.options.curvature(self.labels[start:stop], w)
        a, b = self.label_coef
        mass = a * self.labels[start:stop].sum(axis=1, dtype=np.float64) + b * self.num_classes
        return mass * w


def _given_array(xp, value, name):
    if value is None:
        raise ValueError(f"{name} must be given, got None")
    return xp.asarray(value)


def linear_cross_entropy(X, coef, labels, *, intercept=None, sample_weight=None,
                         label_smoothing=0.0, class_weight=None, ignore_index=None, l2_reg=0.0,
                         reduction="mean", return_grad=True, return_grad_X=False,
                         chunk_rows=None, n_threads=None):
    """Loss and gradients of softmax cross-entropy on ``logits = X @ coef + intercept``.

    The logits are computed ``chunk_rows`` rows at a time (NumPy's or CuPy's BLAS),
    the fused kernel turns each block into its loss and logits gradient in place, and
    the parameter gradients are accumulated: memory beyond the inputs and results is
    one block.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
    coef : array_like, shape (n_features, n_classes)
        float32 when both ``X`` and ``coef`` are float32, else computed in float64.
    labels : array_like
        Integer class indices, shape (n_samples,), or label distributions (float),
        shape (n_samples, n_classes).
    intercept : array_like, shape (n_classes,), optional
    sample_weight : array_like, shape (n_samples,), optional
    label_smoothing : float in [0, 1]
    class_weight : array_like, shape (n_classes,), optional
        Integer labels only; see :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`.
    ignore_index : int, optional
        Integer labels only: rows with this label contribute nothing.
    l2_reg : float >= 0
        Adds ``l2_reg / 2 * ||coef||^2`` (the intercept is not penalized).
    reduction : {"mean", "sum"}
    return_grad : bool
        Also return the gradients with respect to ``coef`` and ``intercept``.
    return_grad_X : bool
        Also return the gradient with respect to ``X`` (n_samples x n_features).
    chunk_rows : int, optional
        Rows per block; by default about 2 MB of ``X`` and at most 2**21 logits.
    n_threads : int, optional
        Threads of the CPU kernel; 1 by default, since BLAS (with its own threads,
        see threadpoolctl) does most of the work, and a second pool of spinning
        threads on the same cores slows both down (measured: up to 16x on 2 cores).

    Returns
    -------
    loss : float (a 0-d array for CuPy inputs)
    grad_coef : ndarray, shape (n_features, n_classes)
        With ``return_grad``.
    grad_intercept : ndarray of shape (n_classes,), or None without ``intercept``
        With ``return_grad``.
    grad_X : ndarray, shape (n_samples, n_features)
        With ``return_grad_X``, last.

    Examples
    --------
    >>> import numpy as np, fastxent
    >>> X = np.array([[1.0, 2.0], [0.5, -1.0]])
    >>> coef = np.zeros((2, 3))
    >>> loss, g_coef, g_intercept = fastxent.linear_cross_entropy(X, coef, [0, 2])
    >>> round(float(loss), 6)  # log(3): uniform predictions
    1.098612
    """
    problem = _Problem(X, coef, labels, intercept, sample_weight, label_smoothing, class_weight,
                       ignore_index, l2_reg, reduction, chunk_rows, n_threads)
    xp = problem.xp
    total, grad_coef, grad_intercept, grad_X = _run(problem, return_grad, return_grad_X)
    if problem.l2_reg:
        total = total + 0.5 * problem.l2_reg * xp.sum(problem.coef.astype(np.float64) ** 2)
        if return_grad:
            grad_coef += problem.l2_reg * problem.coef
    loss = float(total) if xp is np else total
    result = (loss,)
    if return_grad:
        result += (grad_coef, grad_intercept)
    if return_grad_X:
        result += (grad_X,)
    return result if len(result) > 1 else loss


def _run(problem, want_grad_coef, want_grad_X, row_losses=None):
    """The blocks of one problem: the weighted loss sum (float64), the gradients asked for
    (of coef, of the intercept when there is one, of X), and into ``row_losses`` (float64,
    n_samples) each row's loss."""
    xp = problem.xp
    want_grad = want_grad_coef or want_grad_X
    buffer = xp.empty((problem.chunk_rows, problem.num_classes), problem.dtype)
    total = xp.zeros((), np.float64)
    grad_coef = xp.zeros(problem.coef.shape, problem.dtype) if want_grad_coef else None
    grad_intercept = (xp.zeros(problem.num_classes, problem.dtype)
                      if want_grad_coef and problem.intercept is not None else None)
    grad_X = xp.empty(problem.X.shape, problem.dtype) if want_grad_X else None
    for start, stop in problem.blocks():
        z = problem.logits(start, stop, buffer)
        total = total + problem.loss_and_logits_grad(
            start, stop, z, want_grad,
            None if row_losses is None else row_losses[start:stop])
        if want_grad_coef:
            grad_coef += problem.X[start:stop].T @ z
            if grad_intercept is not None:
                grad_intercept += z.sum(axis=0)
        if want_grad_X:
            xp.matmul(z, problem.coef.T, out=grad_X[start:stop])
    return total, grad_coef, grad_intercept, grad_X


def fused_linear(labels, features, weights, *, return_grad, chunk_rows, n_threads):
    """Per-row losses of ``features @ weights`` and, with ``return_grad``, the gradients of
    their sum with respect to ``features`` and ``weights`` (``nn.fused_linear_cross_entropy``)."""
    problem = _Problem(features, weights, labels, None, None, 0.0, None, None, 0.0, "sum",
                       chunk_rows, n_threads)
    xp = problem.xp
    rows = xp.empty(problem.n, np.float64)
    _, grad_weights, _, grad_features = _run(problem, return_grad, return_grad, rows)
    loss = rows.astype(problem.dtype)
    return (loss, grad_features, grad_weights) if return_grad else loss


def linear_cross_entropy_hessp(X, coef, labels, v_coef, v_intercept=None, *, intercept=None,
                               sample_weight=None, label_smoothing=0.0, class_weight=None,
                               ignore_index=None, l2_reg=0.0, reduction="mean", chunk_rows=None,
                               n_threads=None):
    """The Hessian of :func:`linear_cross_entropy`'s loss times a direction.

    For the direction ``(v_coef, v_intercept)`` (``v_intercept`` only with
    ``intercept``): with ``r = X @ v_coef + v_intercept`` and ``p`` the softmax of
    the logits, each row's logits Hessian is ``c_i (diag(p) - p p^T)``, so
    ``H v = (X^T q + l2_reg v_coef, sum_i q_i)`` with ``q = c * p * (r - p . r)``.

    Returns
    -------
    h_coef : ndarray, shape (n_features, n_classes)
    h_intercept : ndarray, shape (n_classes,), or None without ``intercept``
    """
    problem = _Problem(X, coef, labels, intercept, sample_weight, label_smoothing, class_weight,
                       ignore_index, l2_reg, reduction, chunk_rows, n_threads)
    xp = problem.xp
    v_coef = xp.asarray(v_coef, dtype=problem.dtype)
    if v_coef.shape != problem.coef.shape:
        raise ValueError(f"v_coef must have coef's shape {problem.coef.shape}, got {v_coef.shape}")
    if problem.intercept is not None:
        if v_intercept is None:
            raise ValueError("v_intercept must be given with intercept")
        v_intercept = xp.asarray(v_intercept, dtype=problem.dtype)
        if v_intercept.shape != (problem.num_classes,):
            raise ValueError(f"v_intercept must have shape ({problem.num_classes},), got "
                             f"{v_intercept.shape}")
    h_coef = problem.l2_reg * v_coef
    h_intercept = xp.zeros(problem.num_classes, problem.dtype) if problem.intercept is not None else None
    buffer = xp.empty((problem.chunk_rows, problem.num_classes), problem.dtype)
    for start, stop in problem.blocks():
        p = problem.logits(start, stop, buffer)
        p -= p.max(axis=1, keepdims=True)
        xp.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        r = problem.X[start:stop] @ v_coef
        if v_intercept is not None and problem.intercept is not None:
            r += v_intercept
        r -= (p * r).sum(axis=1, keepdims=True)
        q = r
        q *= p
        q *= xp.asarray(problem.curvature(start, stop), dtype=problem.dtype).reshape(-1, 1)
        h_coef += problem.X[start:stop].T @ q
        if h_intercept is not None:
            h_intercept += q.sum(axis=0)
    return h_coef, h_intercept


class LinearObjective:
    """:func:`linear_cross_entropy` on one flat parameter vector, for
    ``scipy.optimize.minimize(objective, x0, jac=True, hessp=objective.hessp)``.

    The vector is ``coef.ravel()`` followed by ``intercept`` (with ``fit_intercept``),
    in float64, as SciPy's optimizers want.

    Parameters
    ----------
    X, labels
        As :func:`linear_cross_entropy` takes them (fixed for the objective's life).
    n_classes : int
    fit_intercept : bool
    **options
        ``sample_weight``, ``label_smoothing``, ``class_weight``, ``ignore_index``,
        ``l2_reg``, ``reduction``, ``chunk_rows``, ``n_threads``.
    """

    def __init__(self, X, labels, n_classes, *, fit_intercept=True, **options):
        self.X, self.labels, self.options = X, labels, options
        self.n_features, self.n_classes = np.shape(X)[1], int(n_classes)
        self.fit_intercept = fit_intercept
        self.size = self.n_features * self.n_classes + (self.n_classes if fit_intercept else 0)

    def unpack(self, w):
        """``(coef, intercept)`` of a flat vector (intercept None without fit_intercept)."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.size,):
            raise ValueError(f"the parameter vector must have {self.size} entries, got {w.shape}")
        cut = self.n_features * self.n_classes
        coef = w[:cut].reshape(self.n_features, self.n_classes)
        return coef, (w[cut:] if self.fit_intercept else None)

    def pack(self, coef, intercept=None):
        parts = [np.asarray(coef, dtype=np.float64).ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(intercept, dtype=np.float64).ravel())
        return np.concatenate(parts)

    def __call__(self, w):
        """``(loss, gradient)`` at the flat vector ``w``."""
        coef, intercept = self.unpack(w)
        loss, g_coef, g_intercept = linear_cross_entropy(
            self.X, coef.astype(np.asarray(self.X).dtype, copy=False), self.labels,
            intercept=intercept, **self.options)
        return float(loss), self.pack(g_coef, g_intercept)

    def hessp(self, w, v):
        """The Hessian at ``w`` times the flat direction ``v``."""
        coef, intercept = self.unpack(w)
        v_coef, v_intercept = self.unpack(v)
        h_coef, h_intercept = linear_cross_entropy_hessp(
            self.X, coef, self.labels, v_coef, v_intercept, intercept=intercept, **self.options)
        return self.pack(h_coef, h_intercept)
