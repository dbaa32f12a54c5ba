"""Time of PyTorch's options through `losses.sparse_softmax_cross_entropy` (MEAN, gradient into
`grad_out`), one thread: docs/BENCHMARKS.md, issue 12. PYTHONPATH picks the build:

    OMP_NUM_THREADS=1 taskset -c 0 python tools/bench_options.py
"""
import time

import numpy as np

from fastxent import nn, losses
rng=np.random.default_rng(0)
def best(fn, t=0.4):
    fn(); b=1e9; end=time.perf_counter()+t; n=0
    while time.perf_counter()<end or n<3:
        s=time.perf_counter(); fn(); b=min(b,time.perf_counter()-s); n+=1
    return b
for N,C in ((8192,1000),(1024,32000)):
    x=(rng.standard_normal((N,C))*3).astype(np.float32); t=rng.integers(0,C,N); g=np.empty_like(x); cw=rng.random(C); t[::7]=-100
    for name,kw in (("ignore_index",dict(ignore_index=-100)),("class_weight",dict(class_weight=cw)),("label_smoothing",dict(label_smoothing=0.1)),("all three",dict(ignore_index=-100,class_weight=cw,label_smoothing=0.1))):
        kw2=dict(kw); 
        if "ignore_index" not in kw2: tt=np.where(t<0,0,t)
        else: tt=t
        v=best(lambda: losses.sparse_softmax_cross_entropy(tt, x, reduction="weighted_mean", return_grad=True, grad_out=g, **kw))
        print(f"{N}x{C} {name}: {v*1e3:.2f} ms")
