"""fastxent.sklearn.SoftmaxRegression: a scikit-learn estimator, and the same solution as
LogisticRegression (multinomial, L2, lbfgs)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastxent  # noqa: E402
from fastxent.sklearn import SoftmaxRegression  # noqa: E402


@parametrize_with_checks([SoftmaxRegression()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _objective(model, X, y, C):
    return fastxent.linear_cross_entropy(X, model.coef_.T, y, intercept=model.intercept_,
                                         l2_reg=1.0 / (C * len(X)), return_grad=False)


@pytest.mark.parametrize("C", [1.0, 0.05])
def test_digits_objective_equals_logistic_regression(digits, C):
    X, y = digits
    theirs = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    ours = SoftmaxRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    assert ours.objective_ == pytest.approx(_objective(ours, X, y, C), rel=1e-12)
    assert ours.objective_ == pytest.approx(_objective(theirs, X, y, C), rel=1e-6)
    assert (ours.predict(X) == theirs.predict(X)).mean() > 0.999


def test_probabilities(digits):
    X, y = digits
    model = SoftmaxRegression(max_iter=30).fit(X[:300], y[:300])
    proba = model.predict_proba(X[:50])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.log(proba), model.predict_log_proba(X[:50]), atol=1e-12)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X[:50]))
    assert 0.9 < model.score(X[:300], y[:300]) <= 1.0


def test_class_weight_is_a_sample_weight(digits):
    X, y = digits
    X, y = X[:400], y[:400]
    weights = {k: 1.0 + k / 10 for k in range(10)}
    by_class = SoftmaxRegression(class_weight=weights, tol=1e-10, max_iter=2000).fit(X, y)
    by_sample = SoftmaxRegression(tol=1e-10, max_iter=2000).fit(
        X, y, sample_weight=np.array([weights[k] for k in y]))
    np.testing.assert_allclose(by_class.coef_, by_sample.coef_, atol=1e-6)


def test_alpha_overrides_C(digits):
    X, y = digits
    model = SoftmaxRegression(alpha=1e-2, C=123.0, tol=1e-10, max_iter=2000).fit(X[:300], y[:300])
    loss, g_coef, g_intercept = fastxent.linear_cross_entropy(
        X[:300], model.coef_.T, y[:300], intercept=model.intercept_, l2_reg=1e-2)
    assert np.abs(g_coef).max() < 1e-7 and np.abs(g_intercept).max() < 1e-7
