"""Single-thread time of the built-in workload's shapes through the public functions, as JSON
(case -> best seconds): run it for two builds, alternately, and compare (docs/BENCHMARKS.md,
issue 12: before and after). PYTHONPATH picks the build:

    OMP_NUM_THREADS=1 PYTHONPATH=<tree> taskset -c 0 python tools/bench_rows.py OUT.json
"""
import json
import sys
import time

import numpy as np

from fastxent import nn, losses
rng = np.random.default_rng(0)
shapes = [((65536,10),np.float32),((8192,1000),np.float32),((1024,32000),np.float32),((128,128256),np.float32),((100000,10),np.float64)]
def best(fn, t=0.3):
    fn(); n=0; b=1e9; end=time.perf_counter()+t
    while time.perf_counter()<end or n<3:
        s=time.perf_counter(); fn(); b=min(b,time.perf_counter()-s); n+=1
    return b
out={}
for (N,C),dt in shapes:
    x=(rng.standard_normal((N,C))*3).astype(dt); t=rng.integers(0,C,N); y=rng.random((N,C)).astype(dt); g=np.empty_like(x)
    key=f"{N}x{C}:{np.dtype(dt).name}"
    out[key+" sparse loss"]=best(lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x))
    out[key+" sparse loss+grad"]=best(lambda: nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True, grad_out=g))
    out[key+" dense loss"]=best(lambda: nn.softmax_cross_entropy_with_logits(labels=y, logits=x))
    out[key+" dense loss+grad"]=best(lambda: nn.softmax_cross_entropy_with_logits(labels=y, logits=x, return_grad=True, grad_out=g))
    out[key+" losses mean+grad"]=best(lambda: losses.sparse_softmax_cross_entropy(t, x, reduction="weighted_mean", return_grad=True, grad_out=g))
json.dump(out, open(sys.argv[1],"w"))
