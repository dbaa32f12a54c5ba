"""A SoftmaxRegression fit of data larger than one worker's memory limit (issue 14).

A dask.distributed LocalCluster of two worker processes (one thread each) with a memory
limit per worker; X (float64) is larger than that limit. Each chunk of X is generated on a
worker from its own seed, and its labels from it (``argmax(X @ true + Gumbel noise)``), at
every evaluation of the objective: nothing is persisted and X is never gathered. The same
chunks are then generated here, whole, for the NumPy fit, whose objective the Dask fit must
reach (to 1e-8 relative).

Prints a Markdown table: rows, X's size, the memory limit, evaluations, seconds per
evaluation, the workers' peak resident memory, and the two objectives.

Usage::

    python tools/bench_dask_fit.py [--rows 800000] [--chunk-rows 50000] [--memory-limit 512MiB]
"""

import argparse
import resource
import time

import numpy as np

D, C, SEED = 100, 20, 7


def true_coef():
    return np.random.default_rng(SEED).standard_normal((D, C)) / np.sqrt(D)


def chunk_X(index, rows):
    return np.random.default_rng([SEED, index]).standard_normal((rows, D))


def chunk_labels(X, index):
    noise = np.random.default_rng([SEED, index, 1]).gumbel(size=(X.shape[0], C))
    return (X @ true_coef() * 3 + noise).argmax(axis=1)


def lazy_data(n, chunk_rows):
    import dask.array as da
    from dask import delayed

    sizes = [min(chunk_rows, n - start) for start in range(0, n, chunk_rows)]
    xs = [delayed(chunk_X, pure=True)(i, rows) for i, rows in enumerate(sizes)]
    ys = [delayed(chunk_labels, pure=True)(x, i) for i, x in enumerate(xs)]
    X = da.concatenate([da.from_delayed(x, (rows, D), np.float64) for x, rows in zip(xs, sizes)])
    y = da.concatenate([da.from_delayed(y, (rows,), np.int64) for y, rows in zip(ys, sizes)])
    return X, y, sizes


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=800_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--memory-limit", default="512MiB")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--skip-numpy", action="store_true")
    args = parser.parse_args()

    import dask.utils
    import distributed

    from fastxent.sklearn import SoftmaxRegression

    X, y, sizes = lazy_data(args.rows, args.chunk_rows)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=args.memory_limit,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        limit = dask.utils.parse_bytes(args.memory_limit)
        client.run(lambda: __import__("fastxent.sklearn"))
        before = client.run(peak_rss_mb)
        start = time.perf_counter()
        model = SoftmaxRegression(tol=args.tol, max_iter=1000).fit(X, y)
        seconds = time.perf_counter() - start
        peaks = client.run(peak_rss_mb)
        evaluations = model.n_iter_[0]
    numpy_objective = None
    if not args.skip_numpy:
        X_np = np.concatenate([chunk_X(i, rows) for i, rows in enumerate(sizes)])
        y_np = np.concatenate([chunk_labels(X_np[sum(sizes[:i]):sum(sizes[:i + 1])], i)
                               for i in range(len(sizes))])
        numpy_objective = SoftmaxRegression(tol=args.tol, max_iter=1000).fit(X_np,
                                                                             y_np).objective_
    x_mb = args.rows * D * 8 / 2**20
    print(f"## Dask fit: {args.rows} x {D} float64, {C} classes, chunks of {args.chunk_rows} "
          f"rows, 2 workers x 1 thread\n")
    print("| X | memory limit per worker | iterations | s per iteration | total s | "
          "worker peak RSS (before the fit) | Dask objective | NumPy objective | relative |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    peak_text = ", ".join(f"{peaks[w]:.0f} MiB ({before[w]:.0f})" for w in sorted(peaks))
    relative = ("-" if numpy_objective is None
                else f"{(model.objective_ - numpy_objective) / numpy_objective:+.1e}")
    numpy_text = "-" if numpy_objective is None else f"{numpy_objective:.12f}"
    print(f"| {x_mb:.0f} MiB | {limit / 2**20:.0f} MiB | {evaluations} | "
          f"{seconds / max(1, evaluations):.2f} | {seconds:.1f} | {peak_text} | "
          f"{model.objective_:.12f} | {numpy_text} | {relative} |")


if __name__ == "__main__":
    main()
