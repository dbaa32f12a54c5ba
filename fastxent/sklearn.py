"""A scikit-learn estimator on the fused objective: multinomial logistic regression, a
drop-in for ``LogisticRegression`` with the L2 penalty (or none) and the lbfgs or
newton-cg solver, on NumPy arrays, SciPy sparse matrices and Dask arrays.

Needs scikit-learn and SciPy (``pip install fastxent[sklearn]``); Dask arrays also need
``fastxent[dask]``. Only scikit-learn's public API is used.
"""

import numbers
import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._backends import is_lazy
from .linear import LinearObjective

__all__ = ["SoftmaxRegression"]

_SOLVERS = ("lbfgs", "newton-cg")
# L-BFGS-B stops when a step lowers the objective by less than this, relatively:
# LogisticRegression's 64 eps for float64; for float32 1e-9, under which the objective's
# float32 evaluation noise (about 5e-9 relative at 200,000 rows) decides, and the line
# search spends its evaluations on that noise (docs/DESIGN.md).
_FTOL = {"float64": 64 * np.finfo(np.float64).eps, "float32": 1e-9}


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression fitted on fastxent's fused linear cross-entropy
    (the logits are never materialized whole).

    Minimizes ``sum_i s_i l_i / sum_i s_i + l2 / 2 * ||coef||^2`` with ``l_i`` the
    softmax cross-entropy of sample ``i``, ``s_i`` its sample weight times its class
    weight, and ``l2 = 1 / (C * sum_i s_i)``: scikit-learn's ``LogisticRegression``
    objective (L2 penalty, lbfgs). With two classes, as ``LogisticRegression``, one
    logistic column is fitted (the second class's logit against a fixed 0), and ``coef_``
    is ``(1, n_features)``.

    The parameters are ``LogisticRegression``'s; those that change nothing for its
    lbfgs solver (``dual=False``, ``intercept_scaling``, ``random_state``) are accepted
    and have no effect here either. Left out: the L1 and elastic-net penalties
    (``l1_ratio`` other than 0) and the liblinear, sag and saga solvers; they raise
    ValueError.

    Parameters
    ----------
    penalty : {"l2", None}, default "l2"
        Deprecated in ``LogisticRegression`` in favour of ``l1_ratio`` and ``C=np.inf``;
        both spellings work.
    C : float, default 1.0
        Inverse regularization strength; ``np.inf`` for no penalty.
    l1_ratio : 0.0 or None
    dual : False
    tol : float, default 1e-4
        The solver's gradient tolerance (L-BFGS's projected gradient, as
        ``LogisticRegression``).
    fit_intercept : bool, default True
    intercept_scaling, random_state
        Accepted for compatibility; unused (as in ``LogisticRegression`` with lbfgs).
    class_weight : dict, "balanced" or None
    solver : {"lbfgs", "newton-cg"}, default "lbfgs"
        ``"newton-cg"`` uses SciPy's trust-region Newton-CG with the fused
        Hessian-vector product.
    max_iter : int, default 100
    verbose : int, default 0
        > 0 prints the objective at each iteration.
    warm_start : bool, default False
        Start from the previous fit's coefficients when their shape still fits.
    n_jobs : int, optional
        Threads of the loss and gradient (``-1`` or None: all cores), when
        ``n_threads`` is not given. Any count gives the same fit, bit for bit.
    alpha : float, optional
        The L2 strength ``l2`` itself (overrides ``C``).
    chunk_rows : int, optional
        Rows per block of the fused objective.
    n_threads : int, optional
        Threads of the fused objective (overrides ``n_jobs``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features), or (1, n_features) for two classes
        In X's float type (float32 for float32 X).
    intercept_ : ndarray of shape (n_classes,) or (1,)
    n_iter_ : ndarray of shape (1,)
    objective_ : float
        The objective at the solution.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from fastxent.sklearn import SoftmaxRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    >>> model = SoftmaxRegression().fit(X, ["a", "b", "b", "a"])
    >>> model.predict([[2.0, 0.0]]).tolist()
    ['b']
    """

    def __init__(self, penalty="deprecated", *, C=1.0, l1_ratio=0.0, dual=False, tol=1e-4,
                 fit_intercept=True, intercept_scaling=1, class_weight=None, random_state=None,
                 solver="lbfgs", max_iter=100, verbose=0, warm_start=False, n_jobs=None,
                 alpha=None, chunk_rows=None, n_threads=None):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.dual = dual
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.alpha = alpha
        self.chunk_rows = chunk_rows
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # --- fitting ------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features: an array, a SciPy sparse matrix or a Dask
        array) and class labels ``y``."""
        self._check_parameters()
        if is_lazy(X, y, sample_weight):
            X, labels, weights, per_class = self._dask_data(X, y, sample_weight)
        else:
            X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                                 dtype=[np.float64, np.float32], order="C",
                                 accept_large_sparse=True)
            check_classification_targets(y)
            encoder = LabelEncoder()
            labels = encoder.fit_transform(y)
            self.classes_ = encoder.classes_
            self._check_classes()
            weights = _sample_weights(sample_weight, X.shape[0])
            per_class = None
            if self.class_weight is not None:
                per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            if per_class is not None:
                weights = weights * per_class[labels]
        total = float(weights.sum()) if weights is not None else float(X.shape[0])
        self._solve(X, labels, weights, total)
        return self

    def _check_parameters(self):
        if self.penalty not in ("deprecated", "l2", None):
            raise ValueError(f"penalty={self.penalty!r} is not supported: SoftmaxRegression "
                             "fits the L2 penalty ('l2') or none (None)")
        if self.l1_ratio not in (None, 0, 0.0):
            raise ValueError(f"l1_ratio={self.l1_ratio!r} is not supported: only the L2 "
                             "penalty (l1_ratio=0)")
        if self.dual:
            raise ValueError("dual=True is not supported (it is liblinear's)")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        if not (isinstance(self.C, numbers.Real) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if self.alpha is not None and not (isinstance(self.alpha, numbers.Real)
                                           and self.alpha >= 0):
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if self.n_jobs is not None and not (isinstance(self.n_jobs, numbers.Integral)
                                            and (self.n_jobs >= 1 or self.n_jobs == -1)):
            raise ValueError(f"n_jobs must be None, -1 or a positive integer, got "
                             f"{self.n_jobs!r}")

    def _check_classes(self):
        if len(self.classes_) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {self.classes_[0]!r}")

    def _l2(self, total):
        if self.alpha is not None:
            return float(self.alpha)
        if self.penalty is None or np.isinf(self.C) or total == 0:
            return 0.0
        return 1.0 / (self.C * total)

    def _threads(self):
        if self.n_threads is not None:
            return self.n_threads
        return None if self.n_jobs in (None, -1) else self.n_jobs

    def _solve(self, X, labels, weights, total):
        n_classes = len(self.classes_)
        binary = n_classes == 2
        objective = LinearObjective(
            X, labels, n_classes, fit_intercept=self.fit_intercept, sample_weight=weights,
            l2_reg=self._l2(total), reduction="mean", chunk_rows=self.chunk_rows,
            n_threads=self._threads(), check_finite=is_lazy(X))   # NumPy's: validate_data
        problem = _BinaryObjective(objective) if binary else objective
        x0 = self._start(problem)
        callback = _Printer() if self.verbose else None
        with objective.threads_held():
            result = self._minimize(problem, x0, callback, objective.dtype)
        if not result.success:
            warnings.warn(f"{self.solver} did not converge ({result.message}); raise max_iter "
                          "or scale the data", ConvergenceWarning, stacklevel=3)
        coef, intercept = problem.unpack(result.x)
        dtype = objective.dtype
        self.coef_ = np.ascontiguousarray(np.atleast_2d(coef.T), dtype=dtype)
        size = 1 if binary else n_classes
        self.intercept_ = (np.asarray(intercept, dtype=dtype).reshape(size) if intercept
                           is not None else np.zeros(size, dtype))
        self.n_iter_ = np.array([result.nit], dtype=np.int32)
        self.objective_ = float(result.fun)

    def _minimize(self, problem, x0, callback, dtype):
        if self.solver == "lbfgs":
            return minimize(problem, x0, method="L-BFGS-B", jac=True, callback=callback,
                            options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                                     "ftol": _FTOL[np.dtype(dtype).name]})
        return minimize(problem, x0, method="trust-ncg", jac=True, hessp=problem.hessp,
                        callback=callback, options={"maxiter": self.max_iter, "gtol": self.tol})

    def _start(self, problem):
        if self.warm_start and hasattr(self, "coef_"):
            intercept = self.intercept_ if self.fit_intercept else None
            try:
                x0 = problem.pack(np.asarray(self.coef_, np.float64).T, intercept)
            except ValueError:
                x0 = None
            if x0 is not None and x0.shape == (problem.size,):
                return x0   # else the shapes changed: a cold start
        return np.zeros(problem.size)

    def _dask_data(self, X, y, sample_weight):
        """The labels as class indices, the classes, and the weights, lazily."""
        import dask.array as da

        if not isinstance(X, da.Array):
            raise TypeError("with Dask labels or weights, X must be a Dask array too")
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D X, got shape {X.shape}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        y = y if isinstance(y, da.Array) else da.from_array(np.asarray(y), chunks=X.chunks[0])
        y = y.rechunk(X.chunks[0])
        self.classes_ = np.unique(da.unique(y).compute())
        check_classification_targets(self.classes_)
        self._check_classes()
        self.n_features_in_ = X.shape[1]
        classes = self.classes_
        labels = y.map_blocks(lambda b: np.searchsorted(classes, b).astype(np.int64),
                              dtype=np.int64)
        weights = None
        if sample_weight is not None:
            weights = (sample_weight if isinstance(sample_weight, da.Array)
                       else da.from_array(np.asarray(sample_weight, np.float64),
                                          chunks=X.chunks[0])).astype(np.float64)
        per_class = None
        if self.class_weight == "balanced":
            counts = da.bincount(labels, minlength=len(classes)).compute()
            per_class = X.shape[0] / (len(classes) * np.maximum(counts, 1))
        elif self.class_weight is not None:
            per_class = np.array([self.class_weight.get(c, 1.0) for c in classes], np.float64)
        if per_class is not None:
            by_row = labels.map_blocks(lambda b: per_class[b], dtype=np.float64)
            weights = by_row if weights is None else weights * by_row
        return X, labels, weights, per_class

    # --- prediction -----------------------------------------------------------------------

    def decision_function(self, X):
        """Logits, shape (n_samples, n_classes); for two classes, as scikit-learn's
        binary classifiers, one score per sample (n_samples,). Lazy for Dask X."""
        check_is_fitted(self)
        if is_lazy(X):
            return self._map_rows(X, self._scores, self._scores_width())
        return self._scores(validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                                          dtype=[np.float64, np.float32]))

    def _scores(self, X):
        scores = X @ self.coef_.T.astype(X.dtype, copy=False) + self.intercept_
        scores = np.asarray(scores)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def _scores_width(self):
        return None if self.coef_.shape[0] == 1 else self.coef_.shape[0]

    def _map_rows(self, X, block, width, dtype=None):
        """``block`` on each row block of a Dask X, lazily."""
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[-1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        dtype = self.coef_.dtype if dtype is None else dtype
        if width is None:
            return X.map_blocks(block, drop_axis=1, dtype=dtype)
        return X.map_blocks(block, chunks=(X.chunks[0], (width,)), dtype=dtype)

    def predict(self, X):
        """The most probable class of each sample (lazy for Dask X)."""
        check_is_fitted(self)
        if is_lazy(X):
            return self._map_rows(X, lambda b: self._labels_of(self._scores(b)), None,
                                  self.classes_.dtype)
        return self._labels_of(self.decision_function(X))

    def _labels_of(self, scores):
        index = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    def predict_log_proba(self, X):
        """Log of the class probabilities, shape (n_samples, n_classes) (lazy for Dask X)."""
        check_is_fitted(self)
        if is_lazy(X):
            return self._map_rows(X, lambda b: _log_softmax(self._full_scores(b)),
                                  len(self.classes_))
        return _log_softmax(self._full_scores_of(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes) (lazy for Dask X)."""
        check_is_fitted(self)
        if is_lazy(X):
            return self._map_rows(X, lambda b: np.exp(_log_softmax(self._full_scores(b))),
                                  len(self.classes_))
        return np.exp(_log_softmax(self._full_scores_of(X)))

    def _full_scores_of(self, X):
        return self._full_scores(validate_data(self, X, reset=False,
                                               accept_sparse=["csr", "csc"],
                                               dtype=[np.float64, np.float32]))

    def _full_scores(self, X):
        """One logit per class: for two classes, 0 for the first."""
        scores = self._scores(X)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        return scores

    def score(self, X, y, sample_weight=None):
        """Mean accuracy, a float (computed for Dask X: ``cross_val_score`` and the model
        selection tools take numbers)."""
        if is_lazy(X, y, sample_weight):
            hits = (self.predict(X) == y).astype(np.float64)
            if sample_weight is None:
                return float(hits.mean())
            return float((hits * sample_weight).sum() / sample_weight.sum())
        return super().score(X, y, sample_weight=sample_weight)


class _BinaryObjective:
    """Two classes as ``LogisticRegression`` fits them: the first class's logit fixed at
    0, one column of coefficients (and one intercept) free."""

    def __init__(self, objective):
        self.objective = objective
        self.n_features = objective.n_features
        self.fit_intercept = objective.fit_intercept
        self.size = self.n_features + (1 if self.fit_intercept else 0)

    def _full(self, w):
        coef = np.zeros((self.n_features, 2))
        coef[:, 1] = w[:self.n_features]
        intercept = np.array([0.0, w[self.n_features]]) if self.fit_intercept else None
        return self.objective.pack(coef, intercept)

    def _column(self, full):
        coef, intercept = self.objective.unpack(full)
        parts = [coef[:, 1]] + ([intercept[1:]] if self.fit_intercept else [])
        return np.concatenate(parts)

    def __call__(self, w):
        loss, grad = self.objective(self._full(w))
        return loss, self._column(grad)

    def hessp(self, w, v):
        return self._column(self.objective.hessp(self._full(w), self._full(v)))

    def unpack(self, w):
        w = np.asarray(w, np.float64)
        return w[:self.n_features].reshape(-1, 1), (w[self.n_features:] if self.fit_intercept
                                                    else None)

    def pack(self, coef, intercept=None):
        coef = np.asarray(coef, np.float64)
        if coef.shape != (self.n_features, 1):
            raise ValueError("coef does not fit")
        parts = [coef.ravel()] + ([np.asarray(intercept, np.float64).ravel()]
                                  if self.fit_intercept else [])
        return np.concatenate(parts)


class _Printer:
    """verbose: the objective at each iteration."""

    def __init__(self):
        self.iteration = 0

    def __call__(self, intermediate_result):
        self.iteration += 1
        print(f"SoftmaxRegression: iteration {self.iteration}, objective "
              f"{intermediate_result.fun:.10g}", flush=True)


def _sample_weights(sample_weight, n):
    """``sample_weight`` as n finite float64 (all 1 when None)."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}!")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight must be finite")
    if n and not np.any(w):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return w


def _log_softmax(scores):
    scores = np.asarray(scores, dtype=np.float64)
    m = scores.max(axis=1, keepdims=True)
    return scores - (m + np.log(np.exp(scores - m).sum(axis=1, keepdims=True)))
