"""tracemalloc peak of the sparse functions with every combination of PyTorch's options,
``grad_out`` given, as a fraction of the logits' bytes (2000 x 1000 float32; docs/BENCHMARKS.md,
issue 12). ``python tools/peak_memory.py``"""

import itertools
import tracemalloc

import numpy as np

from fastxent import losses, nn

N, C = 2000, 1000
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C)).astype(np.float32)
t = rng.integers(0, C, N)
g = np.empty_like(x)
w = rng.random(N)
OPTIONS = {"ignore_index": [None, 3], "class_weight": [None, rng.random(C)],
           "label_smoothing": [0.0, 0.1]}


def peak(call):
    call()
    tracemalloc.start()
    call()
    result = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result


print("| options | nn, grad_out | losses MEAN, grad_out |")
print("| --- | --- | --- |")
for combo in itertools.product(*OPTIONS.values()):
    kw = dict(zip(OPTIONS, combo))
    named = [k for k, v in kw.items() if v is not None and not (isinstance(v, float) and v == 0)]
    a = peak(lambda: nn.sparse_softmax_cross_entropy_with_logits(
        labels=t, logits=x, return_grad=True, grad_out=g, **kw))
    b = peak(lambda: losses.sparse_softmax_cross_entropy(
        t, x, w, reduction="weighted_mean", return_grad=True, grad_out=g, **kw))
    print(f"| {' + '.join(named) or 'none'} | {a / x.nbytes:.4f} | {b / x.nbytes:.4f} |")
