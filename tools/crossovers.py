"""Measure where each CPU kernel family takes over, per kernel path and storage kind.

The three families (rows in lanes, row batches, row kernels; docs/DESIGN.md) are timed
against each other, forced with ``fastxent._backends._kernels.force_family``, over a grid of class
counts, on sparse labels (loss, and loss + gradient into a reused ``grad_out``). For each
path and kind it prints the time per logit of each family and the widths where the planner
should switch: the values of ``FX_LANES_COLS_*`` (``FX_LANES_GRAD_COLS_*``) and
``FX_BATCH_COLS_*``, defaults in ``fastxent/_backends/_src/fx_simd.h``, overridden in
``fastxent/_backends/_src/fx_simd_<path>.h``. Run it pinned to one core, on a quiet machine:

    taskset -c 0 python tools/crossovers.py [--paths avx512,avx2] [--kinds float32,float16]

The families are interleaved call by call, and each figure is the best of ``--repeats``
rounds, so that a slower stretch of a shared machine hits every family alike.
"""

import argparse
import time

import numpy as np

import fastxent
from fastxent._backends import _kernels

FAMILIES = ("lanes", "batch", "rows")


def kinds():
    names = ["float32", "float64", "float16"]
    try:
        import ml_dtypes  # noqa: F401
        names.append("bfloat16")
    except ImportError:
        pass
    return names


def dtype_of(name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def grid(lanes):
    """Class counts: every step of a quarter vector up to past the widest rows in lanes,
    then the widths where batches and row kernels meet."""
    short = sorted(set(range(max(1, lanes // 4), 4 * lanes + 1, max(1, lanes // 4))))
    return short + [5 * lanes, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192]


def seconds(call, repeats):
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def measure(kind, cols, logits_per_call, repeats, rounds, labels="sparse"):
    """Seconds per logit of each family (None where it cannot run) for (loss, loss+grad)."""
    dtype = dtype_of(kind)
    rows = max(logits_per_call // cols, 64)
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((rows, cols), dtype=np.float32) * 3).astype(dtype)
    t = rng.integers(0, cols, rows)
    g = np.empty_like(x)
    if labels == "dense":
        y = np.full(x.shape, 0.1 / cols, dtype)
        y[np.arange(rows), t] += 0.9

        def run(grad):
            return fastxent.nn.softmax_cross_entropy_with_logits(
                labels=y, logits=x, return_grad=grad, grad_out=g if grad else None)
    else:
        def run(grad):
            return fastxent.nn.sparse_softmax_cross_entropy_with_logits(
                labels=t, logits=x, return_grad=grad, grad_out=g if grad else None)
    lanes = _kernels.families()[kind]["block_rows"]
    result = {}
    for grad in (False, True):
        calls = {}
        for family in FAMILIES:
            if family == "lanes" and cols > 4 * lanes:
                continue
            calls[family] = lambda grad=grad: run(grad)
        best = {family: float("inf") for family in calls}
        for _ in range(rounds):
            for family, call in calls.items():
                _kernels.force_family(family)
                try:
                    best[family] = min(best[family], seconds(call, repeats))
                finally:
                    _kernels.force_family(None)
        result[grad] = {family: best.get(family) and best[family] / x.size for family in FAMILIES}
    return result


def crossover(rows, first, second):
    """The widest C of the grid at which ``first`` is at least as fast as ``second`` on the
    sum of loss and loss + gradient, when every wider C prefers ``second`` (else the last
    such C found)."""
    last = 0
    for cols, times in rows:
        a = [times[g][first] for g in (False, True)]
        b = [times[g][second] for g in (False, True)]
        if None in a or None in b:
            continue
        if sum(a) <= sum(b):
            last = cols
    return last


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default=",".join(_kernels.paths()[:-1] or _kernels.paths()))
    parser.add_argument("--kinds", default=",".join(kinds()))
    parser.add_argument("--logits", type=int, default=1 << 20, help="logits per call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--labels", choices=["sparse", "dense"], default="sparse")
    args = parser.parse_args()
    active = _kernels.path()
    for path in args.paths.split(","):
        _kernels.set_path(path)
        try:
            for kind in args.kinds.split(","):
                lanes = _kernels.families()[kind]["block_rows"]
                rows = []
                print(f"\n{path} {kind} {args.labels}: ns per logit, loss | loss + gradient")
                print(f"{'C':>6} " + " ".join(f"{f:>7}" for f in FAMILIES) + " | "
                      + " ".join(f"{f:>7}" for f in FAMILIES))
                for cols in grid(lanes):
                    times = measure(kind, cols, args.logits, args.repeats, args.rounds,
                                    args.labels)
                    rows.append((cols, times))
                    cells = [" ".join(f"{t * 1e9:7.3f}" if t else f"{'-':>7}"
                                      for t in (times[g][f] for f in FAMILIES))
                             for g in (False, True)]
                    print(f"{cols:>6} {cells[0]} | {cells[1]}", flush=True)
                print(f"{path} {kind} {args.labels}: lanes up to {crossover(rows, 'lanes', 'batch')}, "
                      f"batches up to {crossover(rows, 'batch', 'rows')}")
        finally:
            _kernels.set_path(active)


if __name__ == "__main__":
    main()
