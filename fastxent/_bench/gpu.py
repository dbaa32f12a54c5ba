"""``python -m fastxent bench --device gpu``: the CUDA kernels against PyTorch on CUDA,
a CuPy composition and a device-to-device copy, timed with CUDA events."""

import json
import sys
import time

import numpy as np

GPU_SHAPES = "8192x1000,8192x32000,4096x128256,8192x1000:float16,8192x32000:float16,4096x128256:float16"


def gpu_cases(cases, min_time, log):
    """Time fastxent's CUDA kernels against PyTorch on CUDA, a CuPy composition and a
    device-to-device copy, with CUDA events; returns rows like run_cases.

    Inputs smaller than a few times the GPU's L2 cache are replicated and the calls
    rotate among the copies, so that every call reads from device memory."""
    import cupy

    from fastxent._bench.workload import make_inputs

    def seconds(call, copies):
        for k in range(copies):
            call(k)
        cupy.cuda.Device().synchronize()
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        t0 = time.perf_counter()
        while len(times) < 5 or (time.perf_counter() - t0 < min_time and len(times) < 400):
            start.record()
            for k in range(copies):
                call(k)
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3 / copies)
        return float(np.median(times))

    import fastxent

    try:
        import torch
        torch_ok = torch.cuda.is_available()
    except ImportError:
        torch_ok = False
    l2_bytes = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["l2CacheSize"]
    rows = []
    for shape, dtype in cases:
        logits_host, labels_host = make_inputs(shape, dtype)
        copies = max(1, min(8, -(-4 * l2_bytes // logits_host.nbytes)))
        xs = [cupy.asarray(logits_host) for _ in range(copies)]
        ts = [cupy.asarray(labels_host) for _ in range(copies)]
        grads = [cupy.empty_like(xs[0]) for _ in range(copies)]
        copy_s = seconds(lambda k: cupy.copyto(grads[k], xs[k]), copies)
        for grad in (False, True):
            print(f"  {shape[0]}x{shape[1]} {dtype.name} {'loss+grad' if grad else 'loss'} (GPU)",
                  file=log, flush=True)

            def ours(k):
                return fastxent.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=ts[k], logits=xs[k], return_grad=grad,
                    grad_out=grads[k] if grad else None)

            def composition(k):
                x = xs[k].astype(cupy.float32) if dtype == np.float16 else xs[k]
                m = x.max(axis=1, keepdims=True)
                lse = m[:, 0] + cupy.log(cupy.exp(x - m).sum(axis=1))
                return lse - x[cupy.arange(shape[0]), ts[k]]

            got = ours(0)
            want = composition(0)
            loss = got[0] if grad else got
            ok = bool(cupy.allclose(loss.astype(cupy.float32), want.astype(cupy.float32),
                                    rtol=2e-3 if dtype == np.float16 else 1e-4, atol=1e-3))
            if grad:
                p = cupy.exp(xs[0].astype(cupy.float64) - want.astype(cupy.float64)[:, None]
                             - xs[0].astype(cupy.float64)[cupy.arange(shape[0]), ts[0]][:, None])
                p[cupy.arange(shape[0]), ts[0]] -= 1
                ok &= bool(cupy.abs(got[1].astype(cupy.float64) - p).max()
                           < (2e-3 if dtype == np.float16 else 1e-5))
            row = {"shape": list(shape), "dtype": dtype.name, "labels": "sparse", "grad": grad,
                   "threads": "gpu", "bytes": xs[0].nbytes, "copy_s": copy_s,
                   "fastxent_s": seconds(ours, copies), "cupy_s": seconds(composition, copies),
                   "matches_reference": ok}
            if torch_ok:
                import torch.nn.functional as F

                txs = [torch.as_tensor(x, device="cuda") for x in xs]
                tts = [torch.as_tensor(t, device="cuda") for t in ts]

                def peer(k):
                    if not grad:
                        with torch.no_grad():
                            return F.cross_entropy(txs[k], tts[k], reduction="none")
                    xg = txs[k].detach().requires_grad_(True)
                    F.cross_entropy(xg, tts[k], reduction="none").sum().backward()
                    return xg.grad

                row["torch_s"] = seconds(peer, copies)
            rows.append(row)
        xs = ts = grads = None  # free the device memory before the next shape
        cupy.get_default_memory_pool().free_all_blocks()
    return rows


def format_gpu_table(rows):
    head = ["shape", "mode", "fastxent GB/s", "% of copy", "x torch", "x CuPy", "check"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        # bytes moved: the logits read once (loss), or read and the gradient written
        moved = r["bytes"] * (2 if r["grad"] else 1)
        copy_rate = 2 * r["bytes"] / r["copy_s"]  # a copy reads and writes
        rate = moved / r["fastxent_s"]
        lines.append("| " + " | ".join([
            f"{r['shape'][0]}x{r['shape'][1]} {r['dtype']}", "loss+grad" if r["grad"] else "loss",
            f"{r['bytes'] / r['fastxent_s'] / 1e9:.0f}", f"{100 * rate / copy_rate:.0f}%",
            f"{r['torch_s'] / r['fastxent_s']:.1f}" if "torch_s" in r else "-",
            f"{r['cupy_s'] / r['fastxent_s']:.1f}", "OK" if r["matches_reference"] else "MISMATCH"])
            + " |")
    return "\n".join(lines)


def main(args, peers):
    """``bench --device gpu``: time, print the table, write the JSON; returns the exit status."""
    try:
        import cupy
        cupy.zeros(1).sum()
    except Exception as error:  # CuPy missing, or no driver or device
        print(f"bench --device gpu needs CuPy and a CUDA GPU (pip install "
              f"'fastxent[cuda]'): {error}", file=sys.stderr)
        return 2
    import fastxent
    from fastxent._backends import cuda as _cuda

    rows = gpu_cases(args.cases, args.min_time, sys.stderr)
    print(f"fastxent {fastxent.__version__} on {_cuda.info()['name']}, CuPy {cupy.__version__}"
          + (f", PyTorch {peers['torch']}" if "torch" in peers else ""))
    print("fastxent on the GPU (sparse labels). GB/s = logits bytes / median time (CUDA "
          "events). '% of copy' = bytes moved (logits read, plus the gradient written for "
          "loss+grad) per second / device-to-device copy bandwidth. 'x torch' = "
          "F.cross_entropy's time / fastxent's (forward; forward + backward for loss+grad); "
          "'x CuPy' = a max/exp/sum/log CuPy composition's time / fastxent's.\n")
    print(format_gpu_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": "gpu", "rows": rows}, f, indent=1)
    return 0 if all(r["matches_reference"] for r in rows) else 1
