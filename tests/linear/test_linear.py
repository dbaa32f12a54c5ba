"""fastxent.linear_cross_entropy, its Hessian-vector product and LinearObjective.

The reference materializes the logits and applies the reference loss; gradients are
also checked by finite differences.
"""

import tracemalloc

import numpy as np
import pytest

import fastxent
import reference

N, D, C = 37, 6, 5


@pytest.fixture
def problem(rng):
    X = rng.standard_normal((N, D))
    coef = rng.standard_normal((D, C))
    intercept = rng.standard_normal(C)
    labels = rng.integers(0, C, N)
    return X, coef, intercept, labels


def _reference(X, coef, intercept, labels, sample_weight=None, l2_reg=0.0, reduction="mean",
               eps=0.0):
    """Loss and gradients (coef, intercept, X) through the whole logits, in float64."""
    X, coef = np.asarray(X, np.float64), np.asarray(coef, np.float64)
    logits = X @ coef + (0 if intercept is None else intercept)
    if labels.ndim == 1:
        target = np.eye(C)[labels]
    else:
        target = labels
    target = (1 - eps) * target + eps / C
    rows, g_logits, _ = reference.dense(target, logits)
    w = np.ones(N) if sample_weight is None else sample_weight
    denominator = w.sum() if reduction == "mean" else 1.0
    loss = (w * rows).sum() / denominator + 0.5 * l2_reg * (coef ** 2).sum()
    g = g_logits * (w / denominator)[:, None]
    return loss, X.T @ g + l2_reg * coef, g.sum(axis=0), g @ coef.T


@pytest.mark.parametrize("chunk_rows", [1, 8, None])
@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_matches_the_materialized_logits(rng, problem, chunk_rows, kind):
    X, coef, intercept, labels = problem
    if kind == "dense":
        labels = rng.dirichlet(np.ones(C), N)
    sample_weight = rng.random(N)
    loss, g_coef, g_intercept, g_X = fastxent.linear_cross_entropy(
        X, coef, labels, intercept=intercept, sample_weight=sample_weight, l2_reg=0.3,
        label_smoothing=0.1, return_grad_X=True, chunk_rows=chunk_rows)
    want = _reference(X, coef, intercept, labels, sample_weight, 0.3, eps=0.1)
    np.testing.assert_allclose(loss, want[0], rtol=1e-13)
    for got, expected in zip((g_coef, g_intercept, g_X), want[1:]):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_sum_reduction_without_intercept(problem):
    X, coef, _, labels = problem
    loss, g_coef, g_intercept = fastxent.linear_cross_entropy(X, coef, labels, reduction="sum")
    want = _reference(X, coef, None, labels, reduction="sum")
    assert g_intercept is None
    np.testing.assert_allclose(loss, want[0], rtol=1e-13)
    np.testing.assert_allclose(g_coef, want[1], rtol=1e-12, atol=1e-14)
    assert fastxent.linear_cross_entropy(X, coef, labels, return_grad=False) == pytest.approx(
        _reference(X, coef, None, labels)[0], rel=1e-13)


def test_float32(problem):
    X, coef, intercept, labels = problem
    loss, g_coef, g_intercept = fastxent.linear_cross_entropy(
        X.astype(np.float32), coef.astype(np.float32), labels, intercept=intercept)
    want = _reference(X.astype(np.float32), coef.astype(np.float32), intercept, labels)
    assert g_coef.dtype == np.float32 and g_intercept.dtype == np.float32
    np.testing.assert_allclose(loss, want[0], rtol=1e-5)
    np.testing.assert_allclose(g_coef, want[1], atol=1e-5)


def test_options_match_the_sparse_function(rng, problem):
    X, coef, intercept, labels = problem
    labels[[3, 9]] = -1
    class_weight = rng.random(C) + 0.5
    options = dict(ignore_index=-1, class_weight=class_weight, label_smoothing=0.2)
    loss, g_coef, g_intercept = fastxent.linear_cross_entropy(
        X, coef, labels, intercept=intercept, chunk_rows=5, **options)
    logits = X @ coef + intercept
    want, g_logits = fastxent.losses.sparse_softmax_cross_entropy(
        labels, logits, reduction="weighted_mean", return_grad=True, **options)
    np.testing.assert_allclose(loss, want, rtol=1e-13)
    np.testing.assert_allclose(g_coef, X.T @ g_logits, atol=1e-14)
    np.testing.assert_allclose(g_intercept, g_logits.sum(axis=0), atol=1e-14)


def _flat_gradient_check(objective, w, rng):
    loss, grad = objective(w)
    step = 1e-6
    for _ in range(5):
        v = rng.standard_normal(w.size)
        numeric = (objective(w + step * v)[0] - objective(w - step * v)[0]) / (2 * step)
        assert numeric == pytest.approx(grad @ v, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_gradient_and_hessp_by_finite_differences(rng, problem, kind):
    X, _, _, labels = problem
    if kind == "dense":
        labels = rng.dirichlet(np.ones(C), N)
    objective = fastxent.LinearObjective(X, labels, C, sample_weight=rng.random(N), l2_reg=0.05,
                                         label_smoothing=0.1, chunk_rows=7)
    w = rng.standard_normal(objective.size)
    _flat_gradient_check(objective, w, rng)
    step = 1e-6
    for _ in range(3):
        v = rng.standard_normal(w.size)
        numeric = (objective(w + step * v)[1] - objective(w - step * v)[1]) / (2 * step)
        np.testing.assert_allclose(objective.hessp(w, v), numeric, rtol=1e-5, atol=1e-7)


def test_gradient_of_X_by_finite_differences(rng, problem):
    X, coef, intercept, labels = problem
    _, _, _, g_X = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                                 return_grad_X=True)
    step = 1e-6
    v = rng.standard_normal(X.shape)
    numeric = (fastxent.linear_cross_entropy(X + step * v, coef, labels, intercept=intercept,
                                             return_grad=False)
               - fastxent.linear_cross_entropy(X - step * v, coef, labels, intercept=intercept,
                                               return_grad=False)) / (2 * step)
    assert numeric == pytest.approx((g_X * v).sum(), rel=1e-6)


def test_scipy_newton_and_lbfgs_agree(rng, problem):
    optimize = pytest.importorskip("scipy.optimize")
    X, _, _, labels = problem
    objective = fastxent.LinearObjective(X, labels, C, l2_reg=0.01)
    x0 = np.zeros(objective.size)
    newton = optimize.minimize(objective, x0, jac=True, hessp=objective.hessp,
                               method="trust-ncg", options={"gtol": 1e-10})
    lbfgs = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                              options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 5000})
    assert newton.success and lbfgs.success
    assert newton.fun == pytest.approx(lbfgs.fun, rel=1e-9)
    assert np.abs(objective(newton.x)[1]).max() < 1e-8


def test_never_holds_the_whole_logits(rng):
    n, d, c = 20000, 8, 100
    X = rng.standard_normal((n, d))
    coef = rng.standard_normal((d, c))
    labels = rng.integers(0, c, n)
    tracemalloc.start()
    fastxent.linear_cross_entropy(X, coef, labels, chunk_rows=500)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    logits_bytes = n * c * 8
    assert peak < 0.1 * logits_bytes, (peak, logits_bytes)


def test_zero_weights_give_zero(problem):
    X, coef, intercept, labels = problem
    loss, g_coef, g_intercept = fastxent.linear_cross_entropy(
        X, coef, labels, intercept=intercept, sample_weight=np.zeros(N))
    assert loss == 0 and not g_coef.any() and not g_intercept.any()


@pytest.mark.parametrize("change, error, match", [
    ({"coef": np.zeros((D + 1, C))}, ValueError, "coef"),
    ({"labels": np.zeros(N + 1, int)}, ValueError, "labels"),
    ({"labels": np.full(N, C)}, fastxent.InvalidArgumentError, "outside the valid range"),
    ({"labels": np.zeros((N, C + 1))}, ValueError, "dense labels"),
    ({"intercept": np.zeros(C + 1)}, ValueError, "intercept"),
    ({"sample_weight": np.ones(3)}, ValueError, "sample_weight"),
    ({"reduction": "none"}, ValueError, "reduction"),
    ({"chunk_rows": 0}, ValueError, "chunk_rows"),
    ({"l2_reg": -1.0}, ValueError, "l2_reg"),
    ({"X": np.array([["a"] * D] * N)}, TypeError, "X must be real"),
])
def test_bad_arguments(problem, change, error, match):
    X, coef, intercept, labels = problem
    args = {"X": X, "coef": coef, "labels": labels, "intercept": intercept, **change}
    with pytest.raises(error, match=match):
        fastxent.linear_cross_entropy(args.pop("X"), args.pop("coef"), args.pop("labels"), **args)


def test_class_weight_needs_integer_labels(rng, problem):
    X, coef, _, _ = problem
    with pytest.raises(ValueError, match="need integer labels"):
        fastxent.linear_cross_entropy(X, coef, rng.dirichlet(np.ones(C), N),
                                      class_weight=np.ones(C))


# --- tf.nn.fused_linear_cross_entropy ----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [True, False])
def test_fused_linear_cross_entropy_is_the_loss_of_the_product(rng, dtype, sparse):
    features = rng.standard_normal((53, 7)).astype(dtype)
    weights = rng.standard_normal((7, 11)).astype(dtype)
    labels = rng.integers(0, 11, 53) if sparse else rng.dirichlet(np.ones(11), 53).astype(dtype)
    loss, dfeatures, dweights = fastxent.nn.fused_linear_cross_entropy(
        labels=labels, features=features, weights=weights, return_grad=True, chunk_rows=10)
    logits = features.astype(np.float64) @ weights.astype(np.float64)
    if sparse:
        want_loss, g = reference.sparse(labels, logits)
    else:
        want_loss, g, _ = reference.dense(labels, logits)
    assert loss.dtype == dtype and loss.shape == (53,)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss, want_loss, rtol=tol)
    np.testing.assert_allclose(dfeatures, g @ weights.T, rtol=tol, atol=tol)
    np.testing.assert_allclose(dweights, features.T @ g, rtol=tol, atol=tol)
    alone = fastxent.nn.fused_linear_cross_entropy(labels=labels, features=features,
                                                   weights=weights, chunk_rows=10)
    np.testing.assert_array_equal(alone, loss)


def test_fused_linear_cross_entropy_checks_its_arguments(rng):
    with pytest.raises(ValueError, match="X must be .n_samples, n_features. and coef"):
        fastxent.nn.fused_linear_cross_entropy(labels=[0], features=np.zeros((1, 3)),
                                               weights=np.zeros((2, 4)))


# --- the compiled pass: threads, layouts, sparse X ---------------------------------------------

def _many_blocks(rng, n=3000, d=9, c=7, dtype=np.float64):
    X = rng.standard_normal((n, d)).astype(dtype)
    coef = (rng.standard_normal((d, c)) * 0.5).astype(dtype)
    return X, coef, rng.standard_normal(c).astype(dtype), rng.integers(0, c, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["sparse", "dense", "options"])
def test_any_thread_count_gives_the_same_bits(rng, dtype, kind):
    X, coef, intercept, labels = _many_blocks(rng, dtype=dtype)
    options = {"sample_weight": rng.random(len(X)), "chunk_rows": 37}
    if kind == "dense":
        labels = rng.dirichlet(np.ones(coef.shape[1]), len(X)).astype(dtype)
    if kind == "options":
        options.update(label_smoothing=0.1, class_weight=rng.random(coef.shape[1]) + 0.5,
                       ignore_index=2)
    results = []
    for n_threads in (1, 2, 3, None):
        result = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                               return_grad_X=True, n_threads=n_threads, **options)
        result += fastxent.linear_cross_entropy_hessp(X, coef, labels, coef, intercept,
                                                      intercept=intercept, n_threads=n_threads,
                                                      **options)
        results.append(result)
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)


def test_the_compiled_pass_matches_the_numpy_loop(rng, monkeypatch):
    X, coef, intercept, labels = _many_blocks(rng)
    weights = rng.random(len(X))
    v = rng.standard_normal(coef.shape)

    def both():
        return (fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                              sample_weight=weights, return_grad_X=True,
                                              label_smoothing=0.05)
                + fastxent.linear_cross_entropy_hessp(X, coef, labels, v, intercept,
                                                      intercept=intercept, sample_weight=weights))

    compiled = both()
    monkeypatch.setattr(fastxent._linear.blas, "bound", lambda: False)
    loop = both()
    for got, want in zip(compiled, loop):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_one_run_when_the_coefficients_are_large(rng, monkeypatch):
    """Too large a coef for one gradient per run: one run, BLAS's threads; same answer."""
    from fastxent._linear import core as _linear_core

    X, coef, intercept, labels = _many_blocks(rng)
    want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept, chunk_rows=50)
    monkeypatch.setattr(_linear_core, "_SLOT_BYTES", 1)
    data, _ = _linear_core.problem(X, coef, labels, intercept, None, chunk_rows=50,
                                   backend=fastxent._backends.default_backend())
    assert data.n_slots == 1 and data.threads()[0] == 1
    got = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept, chunk_rows=50)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("layout", ["C", "F", "strided rows", "strided columns", "integers"])
def test_any_layout_of_X(rng, layout):
    X, coef, intercept, labels = _many_blocks(rng, n=500)
    want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                         return_grad_X=True)
    if layout == "integers":
        X = np.round(X * 3)
        want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                             return_grad_X=True)
        X = X.astype(np.int32)
    given = {"C": X, "F": np.asfortranarray(X),
             "strided rows": np.repeat(X, 2, axis=0)[::2],
             "strided columns": np.repeat(X, 2, axis=1)[:, ::2], "integers": X}[layout]
    got = fastxent.linear_cross_entropy(given, coef, labels, intercept=intercept,
                                        return_grad_X=True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scipy_sparse_X_matches_dense(rng, fmt, dtype):
    sparse = pytest.importorskip("scipy.sparse")
    X, coef, intercept, labels = _many_blocks(rng, n=700, d=40, dtype=dtype)
    X[rng.random(X.shape) < 0.9] = 0
    v = rng.standard_normal(coef.shape).astype(dtype)
    weights = rng.random(700)
    for given in (getattr(sparse, f"{fmt}_matrix")(X), getattr(sparse, f"{fmt}_array")(X)):
        got = fastxent.linear_cross_entropy(given, coef, labels, intercept=intercept,
                                            sample_weight=weights, chunk_rows=64)
        want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept,
                                             sample_weight=weights, chunk_rows=64)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
            assert np.asarray(g).dtype == np.asarray(w).dtype
        h = fastxent.linear_cross_entropy_hessp(given, coef, labels, v, intercept,
                                                intercept=intercept)
        h_dense = fastxent.linear_cross_entropy_hessp(X, coef, labels, v, intercept,
                                                      intercept=intercept)
        for g, w in zip(h, h_dense):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_sparse_X_has_no_gradient_of_X_and_must_be_well_formed(rng):
    sparse = pytest.importorskip("scipy.sparse")
    X, coef, _, labels = _many_blocks(rng, n=50)
    with pytest.raises(ValueError, match="gradient of X needs a dense X"):
        fastxent.linear_cross_entropy(sparse.csr_matrix(X), coef, labels, return_grad_X=True)
    bad = sparse.csr_matrix(X)
    bad.indices[3] = X.shape[1] + 5   # out of range: would read past coef
    with pytest.raises(ValueError, match="malformed CSR"):
        fastxent.linear_cross_entropy(bad, coef, labels)


def test_holding_blas_threads_restores_them(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, coef, _, labels = _many_blocks(rng)
    objective = fastxent.LinearObjective(X, labels, coef.shape[1], n_threads=2)
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
              if lib["user_api"] == "blas"]
    w = np.zeros(objective.size)
    with objective.threads_held():
        inside = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                  if lib["user_api"] == "blas"]
        held = objective(w)
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
             if lib["user_api"] == "blas"]
    assert after == before and set(inside) == {1}
    loose = objective(w)
    assert held[0] == loose[0]
    np.testing.assert_array_equal(held[1], loose[1])


def _misaligned(a):
    """A copy of ``a`` starting one byte into a buffer (as an unpickled Dask chunk can)."""
    raw = np.empty(a.nbytes + 1, np.uint8)
    out = raw[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def test_misaligned_inputs_are_read_safely(rng):
    """Run under tools/sanitize.sh, an unaligned word read is an error; here, the results."""
    X, coef, intercept, labels = _many_blocks(rng, n=400)
    weights = rng.random(400)
    options = dict(intercept=intercept, sample_weight=weights, class_weight=rng.random(7) + 1)
    want = fastxent.linear_cross_entropy(X, coef, labels, **options)
    got = fastxent.linear_cross_entropy(
        _misaligned(X), _misaligned(coef), _misaligned(labels),
        **{k: _misaligned(v) for k, v in options.items()})
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_reduction_names_of_the_losses_work_here_too(problem):
    X, coef, intercept, labels = problem
    for mean in ("mean", fastxent.Reduction.MEAN):
        assert fastxent.linear_cross_entropy(X, coef, labels, reduction=mean,
                                             return_grad=False) == \
            fastxent.linear_cross_entropy(X, coef, labels, return_grad=False)
    assert fastxent.linear_cross_entropy(X, coef, labels, reduction=fastxent.Reduction.SUM,
                                         return_grad=False) == \
        fastxent.linear_cross_entropy(X, coef, labels, reduction="sum", return_grad=False)
