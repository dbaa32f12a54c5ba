"""A scikit-learn estimator on the fused objective: multinomial logistic regression.

Needs scikit-learn and SciPy (``pip install fastxent[sklearn]``).
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .linear import LinearObjective

__all__ = ["SoftmaxRegression"]


class SoftmaxRegression(LinearClassifierMixin, BaseEstimator):
    """Multinomial logistic regression fitted with L-BFGS on fastxent's fused
    linear cross-entropy (the logits are never materialized whole).

    Minimizes ``sum_i s_i l_i / sum_i s_i + l2 / 2 * ||coef||^2`` with ``l_i`` the
    softmax cross-entropy of sample ``i``, ``s_i`` its sample weight times its class
    weight, and ``l2 = 1 / (C * sum_i s_i)``, scikit-learn's ``LogisticRegression``
    objective (multinomial, L2 penalty, lbfgs solver). Binary problems are fitted
    as two-class softmax (scikit-learn fits one logistic column instead).

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularization strength, as in ``LogisticRegression``.
    alpha : float, optional
        The L2 strength ``l2`` itself (overrides ``C``).
    fit_intercept : bool, default True
    max_iter : int, default 100
        L-BFGS iterations.
    tol : float, default 1e-4
        L-BFGS's projected-gradient tolerance (``gtol``), as in ``LogisticRegression``.
    class_weight : dict, "balanced" or None
    chunk_rows : int, optional
        Rows per block of the fused objective.
    n_threads : int, optional
        Threads of fastxent's kernel.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    n_iter_ : ndarray of shape (1,)
    objective_ : float
        The objective at the solution.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    def __init__(self, C=1.0, *, alpha=None, fit_intercept=True, max_iter=100, tol=1e-4,
                 class_weight=None, chunk_rows=None, n_threads=None):
        self.C = C
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.chunk_rows = chunk_rows
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features) and class labels ``y``."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C")
        check_classification_targets(y)
        if not (isinstance(self.C, (int, float, np.number)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if self.alpha is not None and not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        encoder = LabelEncoder()
        labels = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {self.classes_[0]!r}")
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is not None:
            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            weights = weights * per_class[labels]
        total = float(weights.sum())
        l2 = self.alpha if self.alpha is not None else 1.0 / (self.C * total)
        objective = LinearObjective(
            X, labels, len(self.classes_), fit_intercept=self.fit_intercept,
            sample_weight=weights, l2_reg=l2, reduction="mean", chunk_rows=self.chunk_rows,
            n_threads=self.n_threads)
        result = minimize(objective, np.zeros(objective.size), method="L-BFGS-B", jac=True,
                          options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                                   "ftol": 64 * np.finfo(float).eps})
        if not result.success:
            warnings.warn(f"L-BFGS did not converge ({result.message}); raise max_iter or "
                          "scale the data", ConvergenceWarning, stacklevel=2)
        coef, intercept = objective.unpack(result.x)
        self.coef_ = np.ascontiguousarray(coef.T)
        self.intercept_ = intercept if intercept is not None else np.zeros(len(self.classes_))
        self.n_iter_ = np.array([result.nit])
        self.objective_ = float(result.fun)
        return self

    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X @ self.coef_.T.astype(X.dtype, copy=False) + self.intercept_,
                          dtype=np.float64)

    def decision_function(self, X):
        """Logits, shape (n_samples, n_classes); for two classes, as scikit-learn's
        binary classifiers, the difference of the two (n_samples,)."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_log_proba(self, X):
        """Log of the class probabilities, shape (n_samples, n_classes)."""
        scores = self._logits(X)
        m = scores.max(axis=1, keepdims=True)
        return scores - (m + np.log(np.exp(scores - m).sum(axis=1, keepdims=True)))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))
