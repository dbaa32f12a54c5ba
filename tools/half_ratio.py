"""The time of float16 and bfloat16 logits over float32 logits of the same shape.

Sparse labels, one call per dtype and mode in turn, interleaved round by round, each figure
the best of ``--rounds``; about two million logits per call. A ratio of 1.25 or less is the
target of docs/BENCHMARKS.md ("half precision at the speed of its bytes"). Run it pinned:

    taskset -c 0 python tools/half_ratio.py [--classes 10,100,1000] [--path avx2]
"""

import argparse
import os
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--path", help="a kernel path (FASTXENT_CPU_PATH)")
    args = parser.parse_args()
    if args.path:
        os.environ["FASTXENT_CPU_PATH"] = args.path
    import ml_dtypes

    from fastxent import nn
from fastxent._backends import _kernels

    print(f"kernel path {_kernels.path()}")
    rng = np.random.default_rng(0)
    kinds = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
    for c in (int(value) for value in args.classes.split(",")):
        n = 2_000_000 // c
        logits = rng.standard_normal((n, c), dtype=np.float32)
        labels = rng.integers(0, c, n)
        arrays = {name: logits.astype(dtype) for name, dtype in kinds.items()}
        grads = {name: np.empty_like(array) for name, array in arrays.items()}
        best = {}
        for _ in range(args.rounds):
            for name, array in arrays.items():
                for grad in (False, True):
                    start = time.perf_counter()
                    if grad:
                        nn.sparse_softmax_cross_entropy_with_logits(
                            labels=labels, logits=array, return_grad=True, grad_out=grads[name])
                    else:
                        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=array)
                    took = time.perf_counter() - start
                    best[name, grad] = min(best.get((name, grad), took), took)
        for grad in (False, True):
            base = best["float32", grad]
            print(f"C = {c:5d} {'loss+grad' if grad else 'loss':9s} "
                  f"float32 {base / (n * c) * 1e9:.3f} ns/logit, "
                  f"float16 x {best['float16', grad] / base:.2f}, "
                  f"bfloat16 x {best['bfloat16', grad] / base:.2f}")


if __name__ == "__main__":
    main()
