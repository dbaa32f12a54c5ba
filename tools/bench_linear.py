"""Benchmarks of the linear model objective (issue 6), printed as Markdown tables.

1. Loss + gradient of the multinomial linear objective: fastxent.linear_cross_entropy
   against scikit-learn's LinearModelLoss(HalfMultinomialLoss).loss_gradient on the
   same data, one BLAS thread and all (scikit-learn's n_threads follows; fastxent's
   kernel keeps its default of one thread beside BLAS).
2. Peak extra memory of linear_cross_entropy against the size of the logits, for
   N = 1,000,000, D = 256, C = 1,000 float32 (tracemalloc: NumPy's allocations).
3. Fitting: fastxent.sklearn.SoftmaxRegression against LogisticRegression (lbfgs, same
   regularization) on a synthetic 200,000 x 100, 20-class problem: time and objective.

Usage::

    python tools/bench_linear.py [--skip-memory] [--skip-fit] [--repeat 5]
"""

import argparse
import os
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

import fastxent


def median_time(call, repeat):
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def synthetic(n, d, c, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32).astype(dtype)
    true = rng.standard_normal((d, c)).astype(dtype) / np.sqrt(d)
    logits = X @ true * 3 + rng.gumbel(size=(n, c)).astype(dtype)
    return X, logits.argmax(axis=1)


def loss_gradient(shapes, repeat):
    from sklearn._loss.loss import HalfMultinomialLoss
    from sklearn.linear_model._linear_loss import LinearModelLoss

    print("## Loss + gradient of the linear objective (fit_intercept, no penalty)\n")
    print("| N x D x C dtype | threads | scikit-learn s | fastxent s | speedup |")
    print("| --- | --- | --- | --- | --- |")
    for n, d, c, dtype in shapes:
        X, y = synthetic(n, d, c, dtype)
        rng = np.random.default_rng(1)
        coef = (rng.standard_normal((c, d + 1)) * 0.1).astype(dtype)
        theirs = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=c), fit_intercept=True)
        y_float = y.astype(dtype)
        weights_ours = np.ascontiguousarray(coef[:, :-1].T)
        intercept = coef[:, -1].copy()
        for threads in (1, os.cpu_count()):
            with threadpool_limits(threads):
                t_sk = median_time(lambda: theirs.loss_gradient(coef, X, y_float,
                                                                n_threads=threads), repeat)
                # fastxent's default: BLAS threads for the products, one kernel thread
                t_fx = median_time(lambda: fastxent.linear_cross_entropy(
                    X, weights_ours, y, intercept=intercept), repeat)
            sk_loss, sk_grad = theirs.loss_gradient(coef, X, y_float)
            fx_loss, fx_grad, fx_intercept = fastxent.linear_cross_entropy(
                X, weights_ours, y, intercept=intercept)
            assert abs(sk_loss - fx_loss) <= 1e-5 * abs(sk_loss), (sk_loss, fx_loss)
            assert np.allclose(sk_grad[:, :-1].T, fx_grad, atol=1e-5)
            print(f"| {n}x{d}x{c} {np.dtype(dtype).name} | {threads} | {t_sk:.3f} | "
                  f"{t_fx:.3f} | {t_sk / t_fx:.2f}x |", flush=True)
    print()


def memory(n, d, c):
    print(f"## Peak memory, N = {n}, D = {d}, C = {c} float32\n")
    X, y = synthetic(n, d, c, np.float32)
    coef = np.random.default_rng(1).standard_normal((d, c)).astype(np.float32) * 0.05
    logits_bytes = n * c * 4
    tracemalloc.start()
    start = time.perf_counter()
    loss, g_coef, g_intercept = fastxent.linear_cross_entropy(X, coef, y,
                                                              intercept=np.zeros(c, np.float32))
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("| logits would take | peak extra (tracemalloc) | ratio | time s |")
    print("| --- | --- | --- | --- |")
    print(f"| {logits_bytes / 1e6:.0f} MB | {peak / 1e6:.1f} MB | {peak / logits_bytes:.2%} | "
          f"{seconds:.1f} |\n", flush=True)


def fit(n, d, c, repeat):
    from sklearn.linear_model import LogisticRegression

    from fastxent.sklearn import SoftmaxRegression

    print(f"## Fit, N = {n}, D = {d}, C = {c} float64, C_reg = 1, tol 1e-6\n")
    X, y = synthetic(n, d, c, np.float64)
    l2 = 1.0 / n
    print("| estimator | fit s | iterations | objective | relative to scikit-learn |")
    print("| --- | --- | --- | --- | --- |")
    results = {}
    for name, make in (("LogisticRegression", lambda: LogisticRegression(tol=1e-6, max_iter=1000)),
                       ("SoftmaxRegression", lambda: SoftmaxRegression(tol=1e-6, max_iter=1000))):
        model = make()
        seconds = median_time(lambda: model.fit(X, y), repeat)
        objective = fastxent.linear_cross_entropy(X, model.coef_.T, y, intercept=model.intercept_,
                                                  l2_reg=l2, return_grad=False)
        results[name] = (seconds, int(np.ravel(model.n_iter_)[0]), objective)
    base = results["LogisticRegression"][2]
    for name, (seconds, iterations, objective) in results.items():
        print(f"| {name} | {seconds:.2f} | {iterations} | {objective:.10f} | "
              f"{(objective - base) / base:+.1e} |")
    print(f"\nspeedup: {results['LogisticRegression'][0] / results['SoftmaxRegression'][0]:.2f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    print(f"fastxent {fastxent.__version__}, {os.cpu_count()} CPUs\n")
    loss_gradient([(200_000, 100, 20, np.float64), (200_000, 100, 20, np.float32),
                   (20_000, 256, 1000, np.float32)], args.repeat)
    if not args.skip_memory:
        memory(1_000_000, 256, 1000)
    if not args.skip_fit:
        fit(200_000, 100, 20, max(1, args.repeat // 3))


if __name__ == "__main__":
    main()
