"""Benchmarks of the linear model objective and its fit (issues 6 and 14), as Markdown tables.

1. Loss + gradient (coef and intercept) of the multinomial linear objective, side by side at 1
   and at all threads (BLAS, OpenMP and PyTorch limited alike), float64 and float32:
   - fastxent.linear_cross_entropy, and fastxent with ``n_threads=k`` given explicitly;
   - scikit-learn's LinearModelLoss(HalfMultinomialLoss).loss_gradient;
   - PyTorch's F.linear_cross_entropy, forward + backward (the weight and bias gradients);
   - the GEMMs alone: ``X @ coef`` and ``X.T @ G`` at the same shapes (NumPy).
2. Peak extra memory of linear_cross_entropy against the size of the logits.
3. Fitting to the same objective: fastxent.sklearn.SoftmaxRegression against
   LogisticRegression (lbfgs, same C and tol), 1 and all threads.

Each case checks that the peers agree before it is timed. Usage::

    python tools/bench_linear.py [--repeat 5] [--skip-large] [--skip-memory] [--skip-fit]
"""

import argparse
import os
import platform
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
    y = np.empty(n, np.int64)
    for start in range(0, n, 8192):   # the logits of a large C, a block at a time
        block = X[start:start + 8192] @ true * 3
        block += rng.gumbel(size=block.shape).astype(dtype)
        y[start:start + 8192] = block.argmax(axis=1)
    return X, y


def _peers(X, y, coef, intercept, threads):
    """name -> (callable, (loss, grad_coef)) for each library that is installed."""
    import torch

    dtype = X.dtype
    calls = {}
    calls["fastxent"] = lambda: fastxent.linear_cross_entropy(X, coef, y, intercept=intercept)
    calls["fastxent n_threads=k"] = lambda: fastxent.linear_cross_entropy(
        X, coef, y, intercept=intercept, n_threads=threads)
    try:
        from sklearn._loss.loss import HalfMultinomialLoss
        from sklearn.linear_model._linear_loss import LinearModelLoss
    except ImportError:
        pass
    else:
        loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=coef.shape[1]),
                               fit_intercept=True)
        theirs = np.ascontiguousarray(np.vstack([coef, intercept[None]]).T)
        y_float = y.astype(dtype)

        def sklearn_call():
            value, grad = loss.loss_gradient(theirs, X, y_float, n_threads=threads)
            return value, grad[:, :-1].T
        calls["scikit-learn"] = sklearn_call
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    W = torch.from_numpy(np.ascontiguousarray(coef.T)).requires_grad_()
    B = torch.from_numpy(intercept.copy()).requires_grad_()

    def torch_call():
        W.grad = B.grad = None
        value = torch.nn.functional.linear_cross_entropy(Xt, W, yt, linear_bias=B)
        value.backward()
        return float(value.detach()), W.grad.numpy().T
    calls["torch"] = torch_call

    G = np.empty((X.shape[0], coef.shape[1]), dtype)

    def gemms():
        np.matmul(X, coef, out=G)
        return X.T @ G
    calls["GEMMs alone"] = gemms
    return calls


def loss_gradient(shapes, repeat):
    threads_all = os.cpu_count()
    print("## Loss + gradient of the linear objective (fit_intercept, no penalty)\n")
    print("Milliseconds, median of the repeats; the ratios are each peer's time over "
          "fastxent's.\n")
    print("| N x D x C dtype | threads | fastxent | fastxent n_threads=k | scikit-learn | "
          "torch | GEMMs alone | vs scikit-learn | vs torch | fastxent / GEMMs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, d, c, dtype in shapes:
        import torch

        X, y = synthetic(n, d, c, dtype)
        rng = np.random.default_rng(1)
        coef = (rng.standard_normal((d, c)) * 0.1).astype(dtype)
        intercept = (rng.standard_normal(c) * 0.1).astype(dtype)
        for threads in (1, threads_all):
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                calls = _peers(X, y, coef, intercept, threads)
                if c > 5000:
                    calls.pop("scikit-learn", None)   # it holds N x C float64 logits twice
                want_loss, want_grad = calls["fastxent"]()[:2]
                for name in ("scikit-learn", "torch"):
                    if name in calls:
                        got_loss, got_grad = calls[name]()
                        tol = 1e-4 if dtype == np.float32 else 1e-9
                        assert abs(got_loss - want_loss) <= tol * abs(want_loss), name
                        np.testing.assert_allclose(got_grad, want_grad, atol=tol * 10)
                times = {name: median_time(call, repeat) for name, call in calls.items()}
            fx = times["fastxent"]

            def cell(name):
                return f"{times[name] * 1e3:.1f}" if name in times else "-"

            def ratio(name):
                return f"{times[name] / fx:.2f}x" if name in times else "-"
            print(f"| {n}x{d}x{c} {np.dtype(dtype).name} | {threads} | {cell('fastxent')} | "
                  f"{cell('fastxent n_threads=k')} | {cell('scikit-learn')} | {cell('torch')} | "
                  f"{cell('GEMMs alone')} | {ratio('scikit-learn')} | {ratio('torch')} | "
                  f"{fx / times['GEMMs alone']:.2f} |", flush=True)
    print()


def thread_scaling(n, d, c, repeat):
    """n_threads=1 against n_threads=all, alternating call by call (noise hits both)."""
    k = os.cpu_count()
    print(f"## Threads: n_threads=1 against n_threads={k}, alternating, {2 * repeat} calls "
          "each\n")
    print(f"| N x D x C dtype | 1 thread ms | {k} threads ms | speedup | same bits |")
    print("| --- | --- | --- | --- | --- |")
    for dtype in (np.float64, np.float32):
        X, y = synthetic(n, d, c, dtype)
        coef = (np.random.default_rng(1).standard_normal((d, c)) * 0.1).astype(dtype)
        intercept = np.zeros(c, dtype)
        times = {1: [], k: []}
        results = {}
        for _ in range(2 * repeat):
            for threads in (1, k):
                start = time.perf_counter()
                results[threads] = fastxent.linear_cross_entropy(X, coef, y, intercept=intercept,
                                                                 n_threads=threads)
                times[threads].append(time.perf_counter() - start)
        one, many = np.median(times[1]), np.median(times[k])
        same = all(np.array_equal(a, b) for a, b in zip(results[1], results[k]))
        print(f"| {n}x{d}x{c} {np.dtype(dtype).name} | {one * 1e3:.1f} | {many * 1e3:.1f} | "
              f"{one / many:.2f}x | {same} |", flush=True)
    print()


def memory(n, d, c):
    print(f"## Peak memory, N = {n}, D = {d}, C = {c} float32\n")
    X, y = synthetic(n, d, c, np.float32)
    coef = np.random.default_rng(1).standard_normal((d, c)).astype(np.float32) * 0.05
    logits_bytes = n * c * 4
    tracemalloc.start()
    start = time.perf_counter()
    fastxent.linear_cross_entropy(X, coef, y, intercept=np.zeros(c, np.float32))
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("| logits would take | peak extra (tracemalloc) | ratio | time s |")
    print("| --- | --- | --- | --- |")
    print(f"| {logits_bytes / 1e6:.0f} MB | {peak / 1e6:.1f} MB | {peak / logits_bytes:.2%} | "
          f"{seconds:.1f} |\n", flush=True)


def fit(n, d, c, dtype, repeat, C=1.0, tol=1e-6):
    from sklearn.linear_model import LogisticRegression

    from fastxent.sklearn import SoftmaxRegression

    name = np.dtype(dtype).name
    print(f"## Fit, N = {n}, D = {d}, {c} classes, {name}, C = {C}, tol = {tol}\n")
    X, y = synthetic(n, d, c, dtype)
    l2 = 1.0 / (C * n)
    print("| estimator | threads | fit s | iterations | objective | vs LogisticRegression's "
          "objective | speedup |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for threads in (1, os.cpu_count()):
        results = {}
        with threadpool_limits(threads):
            for label, make in (
                    ("LogisticRegression", lambda: LogisticRegression(C=C, tol=tol,
                                                                      max_iter=1000)),
                    ("SoftmaxRegression", lambda: SoftmaxRegression(C=C, tol=tol, max_iter=1000,
                                                                    n_threads=threads))):
                model = make()
                seconds = median_time(lambda: model.fit(X, y), repeat)
                objective = fastxent.linear_cross_entropy(
                    X.astype(np.float64), model.coef_.T.astype(np.float64), y,
                    intercept=model.intercept_.astype(np.float64), l2_reg=l2, return_grad=False)
                results[label] = (seconds, int(np.ravel(model.n_iter_)[0]), objective)
        base_seconds, _, base = results["LogisticRegression"]
        for label, (seconds, iterations, objective) in results.items():
            print(f"| {label} | {threads} | {seconds:.2f} | {iterations} | {objective:.10f} | "
                  f"{(objective - base) / base:+.1e} | {base_seconds / seconds:.2f}x |",
                  flush=True)
    print()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    from fastxent._backends import _kernels

    print(f"fastxent {fastxent.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, kernel path {_kernels.path()}\n")
    shapes = [(200_000, 100, 20, np.float64), (200_000, 100, 20, np.float32)]
    if not args.skip_large:
        shapes += [(20_000, 256, 1000, np.float32), (2048, 512, 32000, np.float32)]
    loss_gradient(shapes, args.repeat)
    thread_scaling(200_000, 100, 20, args.repeat)
    if not args.skip_memory:
        memory(1_000_000, 256, 1000)
    if not args.skip_fit:
        fit(200_000, 100, 20, np.float64, max(1, args.repeat // 3))
        fit(200_000, 100, 20, np.float32, max(1, args.repeat // 3))


if __name__ == "__main__":
    main()
