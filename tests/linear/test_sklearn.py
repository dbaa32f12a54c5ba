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


# --- a drop-in for LogisticRegression ----------------------------------------------------------

def test_the_parameters_are_logistic_regressions():
    import inspect

    theirs = set(inspect.signature(LogisticRegression).parameters)
    ours = set(inspect.signature(SoftmaxRegression).parameters)
    assert theirs <= ours, theirs - ours


def test_only_public_scikit_learn_api_is_imported():
    import ast
    import pathlib

    import fastxent.sklearn as module

    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sklearn"):
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(alias.name.startswith("_") for alias in node.names), node.module


def test_binary_has_logistic_regressions_shapes_and_solution(digits):
    X, y = digits
    y = (y >= 5).astype(int)
    theirs = LogisticRegression(tol=1e-10, max_iter=10000).fit(X, y)
    ours = SoftmaxRegression(tol=1e-10, max_iter=10000).fit(X, y)
    assert ours.coef_.shape == theirs.coef_.shape == (1, X.shape[1])
    assert ours.intercept_.shape == theirs.intercept_.shape == (1,)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-4, atol=1e-4)
    assert ours.decision_function(X).shape == (len(X),)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    assert (ours.predict(X) == theirs.predict(X)).mean() > 0.999


def test_float32_end_to_end(digits):
    X, y = digits
    X32 = X.astype(np.float32)
    model = SoftmaxRegression(tol=1e-6, max_iter=1000).fit(X32, y)
    reference64 = SoftmaxRegression(tol=1e-6, max_iter=1000).fit(X, y)
    assert model.coef_.dtype == np.float32 and model.intercept_.dtype == np.float32
    assert model.objective_ == pytest.approx(reference64.objective_, rel=1e-4)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_X_fits_as_dense(digits, fmt):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = digits
    X = np.where(np.abs(X) > 1.0, X, 0.0)
    dense = SoftmaxRegression(tol=1e-10, max_iter=2000).fit(X, y)
    lazy = SoftmaxRegression(tol=1e-10, max_iter=2000).fit(getattr(sparse, f"{fmt}_matrix")(X),
                                                           y)
    assert lazy.objective_ == pytest.approx(dense.objective_, rel=1e-10)
    np.testing.assert_allclose(lazy.coef_, dense.coef_, atol=1e-6)
    np.testing.assert_array_equal(lazy.predict(sparse.csr_matrix(X)), dense.predict(X))


def test_warm_start_continues_from_the_last_fit(digits):
    X, y = digits
    model = SoftmaxRegression(warm_start=True, tol=1e-8, max_iter=1000).fit(X, y)
    first = model.n_iter_[0]
    model.fit(X, y)
    assert model.n_iter_[0] < first / 4
    cold = SoftmaxRegression(tol=1e-8, max_iter=1000).fit(X, y)
    assert cold.n_iter_[0] == first


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_prints_each_iteration(digits, capsys):
    X, y = digits
    model = SoftmaxRegression(verbose=1, max_iter=5).fit(X[:200], y[:200])
    lines = [line for line in capsys.readouterr().out.splitlines() if "iteration" in line]
    assert len(lines) == model.n_iter_[0]


def test_no_penalty_newton_cg_and_compatibility_parameters(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    lbfgs = SoftmaxRegression(tol=1e-10, max_iter=5000).fit(X, y)
    newton = SoftmaxRegression(solver="newton-cg", tol=1e-10, max_iter=5000).fit(X, y)
    assert newton.objective_ == pytest.approx(lbfgs.objective_, rel=1e-9)
    same = SoftmaxRegression(tol=1e-10, max_iter=5000, random_state=3, n_jobs=-1,
                             intercept_scaling=2.0, penalty="l2", dual=False).fit(X, y)
    assert same.objective_ == pytest.approx(lbfgs.objective_, rel=1e-12)
    free = SoftmaxRegression(C=np.inf, max_iter=50).fit(X, y)
    also_free = SoftmaxRegression(penalty=None, max_iter=50).fit(X, y)
    np.testing.assert_array_equal(free.coef_, also_free.coef_)


@pytest.mark.parametrize("params, match", [
    ({"penalty": "l1"}, "penalty='l1' is not supported"),
    ({"l1_ratio": 0.5}, "l1_ratio=0.5 is not supported"),
    ({"solver": "saga"}, "solver must be one of"),
    ({"dual": True}, "dual=True"),
    ({"n_jobs": 0}, "n_jobs"),
])
def test_what_is_left_out_says_so(digits, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression(**params).fit(X[:50], y[:50])


def test_any_thread_count_fits_the_same_bits(digits):
    X, y = digits
    fits = [SoftmaxRegression(n_threads=k, max_iter=50).fit(X, y) for k in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
        assert other.n_iter_[0] == fits[0].n_iter_[0]


def test_pandas_inputs_are_taken_as_logistic_regression_takes_them():
    """The estimator follows scikit-learn (pandas in, feature names kept); the array
    functions refuse pandas instead (tests/test_errors.py)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((60, 3)), columns=["a", "b", "c"])
    y = pd.Series(np.arange(60) % 3)
    model = SoftmaxRegression().fit(X, y)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(model.predict(X), model.predict(X.to_numpy()))
