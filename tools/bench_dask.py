"""Dask benchmark: fastxent on a 2,000,000 x 1,000 float32 problem on a LocalCluster.

The logits are generated chunk by chunk on the workers (never whole in memory:
8 GB). For each row-chunk size it times the mean sparse loss, and the mean
loss with its gradient consumed by a reduction (so the 8 GB gradient is never
held either), and reports each worker's peak resident memory against the
chunk's size. Usage::

    python tools/bench_dask.py [--rows 2000000] [--classes 1000] [--chunks 50000,200000]
                               [--class-chunks 4]
"""

import argparse
import resource
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import fastxent


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--chunks", default="50000,200000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--class-chunks", type=int, default=1,
                        help="split the class axis into this many chunks")
    args = parser.parse_args()
    print(f"fastxent {fastxent.__version__}; {args.rows} x {args.classes} float32 "
          f"({args.rows * args.classes * 4 / 1e9:.1f} GB of logits), {args.workers} worker "
          f"processes x 1 thread, class axis in {args.class_chunks} chunk(s)\n")
    print("| row chunk | chunk MB | generate + sum s (no fastxent) | mean loss s "
          "| mean loss + grad s | worker peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rows_per_chunk in (int(c) for c in args.chunks.split(",")):
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, memory_limit="10GB") as cluster, \
                Client(cluster) as client:
            rng = da.random.default_rng(0)
            class_chunk = -(-args.classes // args.class_chunks)
            logits = rng.standard_normal((args.rows, args.classes), dtype=np.float32,
                                         chunks=(rows_per_chunk, class_chunk))
            labels = rng.integers(0, args.classes, args.rows, chunks=rows_per_chunk)
            start = time.perf_counter()
            logits.sum(dtype=np.float64).compute()
            baseline_s = time.perf_counter() - start
            loss = fastxent.losses.sparse_softmax_cross_entropy(
                labels, logits, reduction=fastxent.Reduction.MEAN)
            start = time.perf_counter()
            value = float(loss.compute())
            loss_s = time.perf_counter() - start
            result, grad = fastxent.losses.sparse_softmax_cross_entropy(
                labels, logits, reduction=fastxent.Reduction.MEAN, return_grad=True)
            start = time.perf_counter()
            value2, grad_norm = da.compute(result, (grad.astype(np.float64) ** 2).sum())
            both_s = time.perf_counter() - start
            assert np.isclose(value, float(value2), rtol=1e-5) and np.isfinite(grad_norm)
            peaks = client.run(peak_rss_mb)
            print(f"| {rows_per_chunk} | {rows_per_chunk * class_chunk * 4 / 1e6:.0f} "
                  f"| {baseline_s:.1f} | {loss_s:.1f} | {both_s:.1f} | "
                  f"{max(peaks.values()):.0f} |", flush=True)
    print("\nTimes include generating the logits on the workers (NumPy's normal generator), "
          "which dominates.")


if __name__ == "__main__":
    main()
