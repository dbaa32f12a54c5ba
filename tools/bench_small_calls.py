"""Per-call time of small calls (32 x 10 float32), in microseconds and in units of one NumPy
ufunc call on the same array (np.exp), beside PyTorch eager and NumPy by hand: the figures
of docs/BENCHMARKS.md (issue 12). Run pinned to one core:

    OMP_NUM_THREADS=1 taskset -c 0 python tools/bench_small_calls.py
"""
import timeit

import numpy as np
import torch

from fastxent import losses, nn
from fastxent._backends import _kernels
torch.set_num_threads(1)
x = np.random.default_rng(0).random((32,10)).astype(np.float32); t = np.random.default_rng(1).integers(0,10,32)
X = torch.from_numpy(x); T = torch.from_numpy(t)
def tm(fn, n=20000):
    return min(timeit.repeat(fn, number=n, repeat=7))/n*1e6
def by_hand():
    m = x.max(1, keepdims=True); lse = np.log(np.exp(x - m).sum(1)) + m[:, 0]
    return lse - x[np.arange(32), t]
u = tm(lambda: np.exp(x))
rows = [("np.exp(x) (the unit)", lambda: np.exp(x)), ("np.max(x)", lambda: np.max(x)),
 ("NumPy by hand (loss)", by_hand),
 ("torch F.cross_entropy none", lambda: torch.nn.functional.cross_entropy(X, T, reduction='none')),
 ("torch F.cross_entropy mean", lambda: torch.nn.functional.cross_entropy(X, T)),
 ("nn loss", lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x)),
 ("nn loss + grad", lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True)),
 ("losses mean", lambda: losses.sparse_softmax_cross_entropy(t, x, reduction="weighted_mean")),
 ("losses mean + grad", lambda: losses.sparse_softmax_cross_entropy(t, x, reduction="weighted_mean", return_grad=True)),
 ("losses default (nonzero weights)", lambda: losses.sparse_softmax_cross_entropy(t, x)),
 ("nn loss, general path (n_threads=1)", lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, n_threads=1)),
 ("nn loss + grad, label_smoothing=0.1", lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True, label_smoothing=0.1)),
 ("nn dense loss", lambda: nn.softmax_cross_entropy_with_logits(labels=x, logits=x)),
]
print("path", _kernels.path())
for name, fn in rows:
    v = tm(fn); print(f"| {name} | {v:.2f} | {v/u:.1f} |")
