"""fastxent.linear and SoftmaxRegression on Dask arrays, against the NumPy results.

Row chunks are uneven and X's feature axis is split too (made one chunk inside); the
objective is computed block by block and combined by one tree reduction. The fits run on
a real dask.distributed LocalCluster of two worker processes.
"""

import re

import numpy as np
import pytest

import fastxent

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")

ROW_CHUNKS = (70, 300, 1, 229)    # 600 rows
N, D, C = 600, 8, 5


@pytest.fixture
def problem(rng):
    X = rng.standard_normal((N, D))
    coef = rng.standard_normal((D, C)) * 0.5
    return X, coef, rng.standard_normal(C), rng.integers(0, C, N), rng.random(N)


def _lazy(X, *rows):
    return (da.from_array(X, chunks=(ROW_CHUNKS, (3, 5))),
            *[None if r is None else da.from_array(r, chunks=(ROW_CHUNKS,) + r.shape[1:])
              for r in rows])


@pytest.mark.parametrize("kind", ["sparse", "dense", "options"])
def test_loss_and_gradients_are_lazy_and_match_numpy(rng, problem, kind):
    X, coef, intercept, labels, weights = problem
    options = {"l2_reg": 0.1}
    if kind == "dense":
        labels = rng.dirichlet(np.ones(C), N)
    if kind == "options":
        options.update(label_smoothing=0.1, class_weight=rng.random(C) + 0.5, ignore_index=3)
    want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                         sample_weight=weights, return_grad_X=True, **options)
    Xd, labels_d, weights_d = _lazy(X, labels, weights)
    got = fastxent.linear_cross_entropy(Xd, coef, labels_d, intercept=intercept,
                                        sample_weight=weights_d, return_grad_X=True, **options)
    assert all(isinstance(g, da.Array) for g in got)
    assert [g.shape for g in got] == [np.shape(w) for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.compute(scheduler="threads"), w, rtol=1e-12, atol=1e-15)


def test_hessp_and_linear_objective_match_numpy(rng, problem):
    X, coef, intercept, labels, weights = problem
    v, v_intercept = rng.standard_normal((D, C)), rng.standard_normal(C)
    Xd, labels_d, weights_d = _lazy(X, labels, weights)
    want = fastxent.linear_cross_entropy_hessp(X, coef, labels, v, v_intercept,
                                               intercept=intercept, sample_weight=weights)
    got = fastxent.linear_cross_entropy_hessp(Xd, coef, labels_d, v, v_intercept,
                                              intercept=intercept, sample_weight=weights_d)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.compute(), w, rtol=1e-12, atol=1e-15)
    lazy = fastxent.LinearObjective(Xd, labels_d, C, sample_weight=weights_d, l2_reg=0.01)
    eager = fastxent.LinearObjective(X, labels, C, sample_weight=weights, l2_reg=0.01)
    w = rng.standard_normal(eager.size)
    assert lazy(w)[0] == pytest.approx(eager(w)[0], rel=1e-13)
    np.testing.assert_allclose(lazy(w)[1], eager(w)[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lazy.hessp(w, w), eager.hessp(w, w), rtol=1e-12, atol=1e-15)


def test_numpy_labels_follow_the_row_chunks(problem):
    X, coef, intercept, labels, _ = problem
    want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept)
    got = fastxent.linear_cross_entropy(_lazy(X)[0], coef, labels, intercept=intercept)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.compute(), w, rtol=1e-12)


def test_a_bad_label_is_reported_at_its_position_in_the_whole_array(problem):
    X, coef, _, labels, _ = problem
    labels = labels.copy()
    labels[450] = C + 2
    loss = fastxent.linear_cross_entropy(*_lazy(X, labels)[:1], coef, _lazy(X, labels)[1],
                                         return_grad=False)
    with pytest.raises(fastxent.InvalidArgumentError, match=r"position \(450,\)"):
        loss.compute()


def test_bad_arguments_fail_before_computing(problem):
    X, coef, _, labels, _ = problem
    Xd, labels_d = _lazy(X, labels)
    with pytest.raises(ValueError, match="coef"):
        fastxent.linear_cross_entropy(Xd, coef[:-1], labels_d)
    with pytest.raises(ValueError) as numpy_error:   # the NumPy problem's checks, word for word
        fastxent.linear_cross_entropy(X, coef, labels[:-1])
    with pytest.raises(ValueError, match=re.escape(str(numpy_error.value))):
        fastxent.linear_cross_entropy(Xd, coef, labels_d[:-1])
    with pytest.raises(ValueError, match="reduction"):
        fastxent.linear_cross_entropy(Xd, coef, labels_d, reduction="none")


# --- SoftmaxRegression on a LocalCluster --------------------------------------------------------

@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1500, 6))
    true = rng.standard_normal((6, 4))
    y = np.array(list("abcd"))[(X @ true + rng.gumbel(size=(1500, 4))).argmax(axis=1)]
    return X, y, rng.random(1500) + 0.5


@pytest.mark.parametrize("class_weight", [None, "balanced"])
@pytest.mark.parametrize("classes", [4, 2])
def test_dask_fit_reaches_the_numpy_objective(cluster_client, classification, class_weight,
                                              classes):
    from fastxent.sklearn import SoftmaxRegression

    X, y, weights = classification
    if classes == 2:
        y = np.where(y == "a", "a", "b")
    eager = SoftmaxRegression(tol=1e-10, max_iter=500, class_weight=class_weight).fit(
        X, y, sample_weight=weights)
    chunks = (400, 400, 700)
    lazy = SoftmaxRegression(tol=1e-10, max_iter=500, class_weight=class_weight).fit(
        da.from_array(X, chunks=(chunks, 6)), da.from_array(y, chunks=(chunks,)),
        sample_weight=da.from_array(weights, chunks=(chunks,)))
    assert lazy.objective_ == pytest.approx(eager.objective_, rel=1e-8)
    np.testing.assert_allclose(lazy.coef_, eager.coef_, atol=1e-5)
    np.testing.assert_array_equal(lazy.classes_, eager.classes_)

    Xd = da.from_array(X, chunks=(chunks, (2, 4)))
    for method in ("decision_function", "predict_proba", "predict_log_proba", "predict"):
        result = getattr(lazy, method)(Xd)
        assert isinstance(result, da.Array), method
        computed = cluster_client.compute(result, sync=True)
        expected = getattr(lazy, method)(X)
        if method == "predict":
            np.testing.assert_array_equal(computed, expected)
        else:
            np.testing.assert_allclose(computed, expected, rtol=1e-12, atol=1e-12)
    score = lazy.score(Xd, da.from_array(y, chunks=(chunks,)))
    assert isinstance(score, float) and score == pytest.approx(lazy.score(X, y))


def test_cross_val_score_takes_a_dask_fit(classification):
    """score gives a number, as the model selection tools need."""
    from sklearn.model_selection import cross_val_score

    from fastxent.sklearn import SoftmaxRegression

    X, y, _ = classification
    scores = cross_val_score(SoftmaxRegression(), da.from_array(X, chunks=(500, 6)),
                             da.from_array(y, chunks=500), cv=3, error_score="raise")
    assert scores.shape == (3,) and (scores > 0.5).all()


@pytest.mark.parametrize("bad, message", [(np.nan, "Input X contains NaN"),
                                          (np.inf, "Input X contains infinity")])
def test_dask_fit_refuses_nan_and_inf_in_X_as_scikit_learn_does(classification, bad, message):
    """Found in the first evaluation's pass over X (no pass of its own), before the solver
    takes a step; the NumPy fit raises the same."""
    from fastxent.sklearn import SoftmaxRegression

    X, y, _ = classification
    X = X.copy()
    X[1234, 3] = bad
    for data in (X, da.from_array(X, chunks=(400, 6))):
        with pytest.raises(ValueError, match=message):
            SoftmaxRegression().fit(data, y if data is X else da.from_array(y, chunks=400))


def test_dask_fit_never_gathers_X(cluster_client, classification, monkeypatch):
    """The client only ever receives the objective's sums (a few KB), never X's rows."""
    from fastxent.sklearn import SoftmaxRegression

    X, y, _ = classification
    Xd = da.from_array(X, chunks=(300, 6)).persist()
    received = []
    original = distributed.Client.gather

    def gather(self, futures, *args, **kwargs):
        result = original(self, futures, *args, **kwargs)
        received.append(result)
        return result

    monkeypatch.setattr(distributed.Client, "gather", gather)
    SoftmaxRegression(max_iter=20).fit(Xd, da.from_array(y, chunks=300))
    sizes = [sum(np.asarray(part).nbytes for part in _leaves(r)) for r in received]
    assert received and max(sizes) < X.nbytes / 10, sizes


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif value is not None and not isinstance(value, str):
        yield value


def test_dask_array_of_sparse_chunks(problem):
    sparse = pytest.importorskip("scipy.sparse")
    X, coef, intercept, labels, weights = problem
    X = np.where(np.abs(X) > 1, X, 0.0)
    want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                         sample_weight=weights)
    blocks = [da.from_array(sparse.csr_matrix(X[s:s + 150]), chunks=(150, D), asarray=False)
              for s in range(0, N, 150)]
    Xd = da.concatenate(blocks, axis=0)
    got = fastxent.linear_cross_entropy(Xd, coef, labels, intercept=intercept,
                                        sample_weight=weights)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.compute(scheduler="threads"), w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dense", [False, True])
def test_fused_linear_cross_entropy_stays_lazy_and_matches_numpy(cluster_client, rng, dense):
    from fastxent import nn

    features = rng.standard_normal((300, 7))
    weights = rng.standard_normal((7, 5))
    labels = rng.integers(0, 5, 300)
    if dense:
        labels = rng.dirichlet(np.ones(5), 300)
    want = nn.fused_linear_cross_entropy(labels=labels, features=features, weights=weights,
                                         return_grad=True)
    lazy = nn.fused_linear_cross_entropy(
        labels=da.from_array(labels, chunks=(100,) + labels.shape[1:]),
        features=da.from_array(features, chunks=(100, 7)), weights=weights, return_grad=True)
    assert all(isinstance(part, da.Array) for part in lazy)
    got = cluster_client.compute(list(lazy), sync=True)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-10)
    only_loss = nn.fused_linear_cross_entropy(labels=da.from_array(labels, chunks=100),
                                              features=da.from_array(features, chunks=100),
                                              weights=weights)
    np.testing.assert_allclose(only_loss.compute(), want[0], rtol=1e-12)
