"""``python -m fastxent bench``: fastxent against NumPy, the read floor and the installed peers.

Each case times fastxent (on one kernel path, or each with ``--path all``), a NumPy
reference (max / exp / sum / log), the streaming-read floor (``np.max`` over the
flattened inputs: reading them once) and every installed peer (PyTorch
``F.cross_entropy`` eager and under ``torch.compile`` (Inductor), JAX/optax under
``jit``), in turn within one process, and reports medians, GB/s of logits and ratios.
Single-thread figures come from a child process pinned to one core (every library's
threads included), all-thread figures from this process. Each fastxent result is
checked against the NumPy reference. The CPU model, its instruction sets and the
kernel path are printed with the table and kept in the JSON.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT_SHAPES = "65536x10,8192x1000,1024x32000,128x128256,100000x10:float64"
PEERS = ("torch", "torch.compile", "jax")
# The CPU features the kernel paths care about, as /proc/cpuinfo names them.
ISA_FLAGS = ("sse2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
             "asimd", "sve", "sve2")


# --- the workload -----------------------------------------------------------------------------

def parse_shapes(text):
    """``"NxC[:dtype],..."`` to a list of ((N, C), dtype)."""
    cases = []
    for item in text.split(","):
        shape, _, dtype = item.strip().partition(":")
        rows, cols = (int(v) for v in shape.lower().split("x"))
        cases.append(((rows, cols), np.dtype(dtype or "float32")))
    return cases


def make_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(dtype)
    labels = rng.integers(0, shape[1], shape[0])
    return logits, labels


def dense_labels(labels, shape, dtype):
    """Smoothed one-hot labels: a realistic dense target, every entry non-zero."""
    y = np.full(shape, 0.1 / shape[1], dtype)
    y[np.arange(shape[0]), labels] += 0.9
    return y


# --- timing -----------------------------------------------------------------------------------

def median_seconds(call, min_time, min_runs=5, max_runs=200):
    """Median wall time of ``call`` after one warm-up call."""
    call()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < min_time and len(times) < max_runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# --- the contestants --------------------------------------------------------------------------

def numpy_reference(logits, labels, y, grad):
    x = logits.astype(np.float32) if logits.dtype == np.float16 else logits
    m = x.max(axis=1, keepdims=True)
    shifted = x - m
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if y is None:
        loss = lse[:, 0] - shifted[np.arange(len(labels)), labels]
    else:
        loss = (y * (lse - shifted)).sum(axis=1)
    if not grad:
        return loss
    p = np.exp(shifted - lse)
    if y is None:
        p[np.arange(len(labels)), labels] -= 1
    else:
        p -= y
    return loss, p


def fastxent_call(logits, labels, y, grad, n_threads, grad_out):
    import fastxent

    if y is None:
        return lambda: fastxent.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=grad, grad_out=grad_out if grad else None,
            n_threads=n_threads)
    return lambda: fastxent.nn.softmax_cross_entropy_with_logits(
        labels=y, logits=logits, return_grad=grad, grad_out=grad_out if grad else None,
        n_threads=n_threads)


def torch_call(logits, labels, y, grad):
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(logits)
    target = torch.from_numpy(labels) if y is None else torch.from_numpy(y)
    if not grad:
        def forward():
            with torch.no_grad():
                return F.cross_entropy(x, target, reduction="none")
        return forward

    def forward_backward():
        xg = x.detach().requires_grad_(True)
        F.cross_entropy(xg, target, reduction="none").sum().backward()
        return xg.grad
    return forward_backward


def torch_compile_call(logits, labels, y, grad):
    """``F.cross_entropy`` under ``torch.compile`` (Inductor, static shapes); with a
    gradient, the compiled forward and AOTAutograd's compiled backward."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(logits)
    target = torch.from_numpy(labels) if y is None else torch.from_numpy(y)
    # every case is its own compilation: dynamo keys its cache by the function's code,
    # and after 8 recompilations it would silently run the function eagerly
    torch._dynamo.reset()
    loss = torch.compile(lambda v, t: F.cross_entropy(v, t, reduction="none"), dynamic=False)
    if not grad:
        def forward():
            with torch.no_grad():
                return loss(x, target)
        return forward

    def forward_backward():
        xg = x.detach().requires_grad_(True)
        loss(xg, target).sum().backward()
        return xg.grad
    return forward_backward


def jax_call(logits, labels, y, grad):
    import jax
    import jax.numpy as jnp

    # JAX computes float64 inputs in float32 unless told otherwise; compare like with like.
    jax.config.update("jax_enable_x64", True)
    try:
        import optax
        sparse_loss = optax.softmax_cross_entropy_with_integer_labels
        dense_loss = optax.softmax_cross_entropy
    except ImportError:  # the same formula, written with jax.nn
        def sparse_loss(x, t):
            return -jnp.take_along_axis(jax.nn.log_softmax(x), t[:, None], axis=1)[:, 0]

        def dense_loss(x, t):
            return -(t * jax.nn.log_softmax(x)).sum(axis=1)

    x = jax.device_put(logits)
    target = jax.device_put(labels if y is None else y)
    assert x.dtype == logits.dtype, f"JAX computes in {x.dtype}, not {logits.dtype}"
    loss = sparse_loss if y is None else dense_loss
    if grad:
        fn = jax.jit(jax.value_and_grad(lambda v, t: loss(v, t).sum()))
    else:
        fn = jax.jit(loss)
    return lambda: jax.block_until_ready(fn(x, target))


def installed_peers():
    """{peer: version} of the peers that can run here (torch.compile needs a C++ compiler)."""
    found = {}
    for name in ("torch", "jax"):
        try:
            module = __import__(name)
            found[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    if "torch" in found and (shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")):
        found["torch.compile"] = found["torch"]
    return {name: found[name] for name in PEERS if name in found}


PEER_CALLS = {"torch": torch_call, "torch.compile": torch_compile_call, "jax": jax_call}


def cpu_facts():
    """The CPU's model name and the instruction sets the kernel paths care about."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model", "hardware") and model is None:
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        pass
    return {"model": model or platform.processor() or platform.machine(),
            "machine": platform.machine(),
            "isa": [f for f in ISA_FLAGS if f in flags]}


# --- running the cases ------------------------------------------------------------------------

def run_cases(cases, threads, min_time, peers, paths, log):
    """Time every case in this process; ``threads`` is 1 or None (all). The read floor,
    NumPy and the peers are timed once per case, fastxent once per kernel path."""
    from fastxent import _kernels

    if threads == 1 and "torch" in peers:
        import torch
        torch.set_num_threads(1)
    active = _kernels.path()
    rows = []
    for shape, dtype in cases:
        logits, labels = make_inputs(shape, dtype)
        grad_out = np.empty_like(logits)
        read = median_seconds(lambda: np.max(logits.reshape(-1)), min_time)
        for kind in ("sparse", "dense"):
            y = None if kind == "sparse" else dense_labels(labels, shape, dtype)
            # one read of the inputs: the logits, plus the labels for dense ones
            read_inputs = read if y is None else read + median_seconds(
                lambda: np.max(y.reshape(-1)), min_time)
            for grad in (False, True):
                label = f"{shape[0]}x{shape[1]} {dtype.name} {kind} {'loss+grad' if grad else 'loss'}"
                print(f"  {label} ({'1 thread' if threads == 1 else 'all threads'})",
                      file=log, flush=True)
                want = numpy_reference(logits, labels, y, grad)
                common = {"shape": list(shape), "dtype": dtype.name, "labels": kind, "grad": grad,
                          "threads": "1" if threads == 1 else "all", "bytes": logits.nbytes,
                          "read_s": read, "read_inputs_s": read_inputs,
                          "numpy_s": median_seconds(
                              lambda: numpy_reference(logits, labels, y, grad), min_time / 2,
                              min_runs=3)}
                for peer in peers:
                    if dtype == np.float16 and peer.startswith("torch"):
                        continue
                    try:
                        common[f"{peer}_s"] = median_seconds(
                            PEER_CALLS[peer](logits, labels, y, grad), min_time)
                    except Exception as error:  # a peer that cannot run this case is skipped
                        print(f"    {peer} failed: {error!r}", file=log)
                for path in paths:
                    _kernels.set_path(path)
                    try:
                        ours = fastxent_call(logits, labels, y, grad, threads, grad_out)
                        result = ours()
                        got_loss = result[0] if grad else result
                        want_loss = want[0] if grad else want
                        ok = bool(np.allclose(got_loss, want_loss, rtol=1e-4, atol=1e-5))
                        if grad:
                            ok = ok and bool(np.allclose(result[1], want[1], rtol=1e-4, atol=1e-5))
                        rows.append({**common, "path": path,
                                     "fastxent_s": median_seconds(ours, min_time),
                                     "matches_reference": ok})
                    finally:
                        _kernels.set_path(active)
    return rows


# Where a path below the CPU's best is timed, the peers are held to the same class of
# instruction set where they allow it (JAX/XLA and PyTorch, eager and Inductor), so that
# the comparison is the one a user of such a CPU would make.
PEER_ISA_CAPS = {
    "avx2": {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "sse2": {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2", "ATEN_CPU_CAPABILITY": "default"},
    "plain": {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2", "ATEN_CPU_CAPABILITY": "default"},
}


def child_environment(path, best, threads):
    """The environment of a child timing ``path`` (capping the peers below ``best``)."""
    env = {**os.environ, "FASTXENT_CPU_PATH": path}
    if threads == "1":
        env["OMP_NUM_THREADS"] = "1"
    if path != best and path in PEER_ISA_CAPS:
        for key, value in PEER_ISA_CAPS[path].items():
            env[key] = f"{env[key]} {value}" if key == "XLA_FLAGS" and env.get(key) else value
        # Inductor's precompiled headers are built for one instruction set: keep apart
        env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tempfile.gettempdir(),
                                                      f"torchinductor_fastxent_{path}")
    return env


def run_child(args, path, best, threads, log):
    """Time one kernel path in a child process: pinned to one core for one thread (so that
    every library's thread pool lives on that core), free otherwise; returns its rows."""
    command = [sys.executable, "-m", "fastxent", "bench", "--threads", threads, "--child",
               "--shapes", args.shapes, "--min-time", str(args.min_time), "--path", path]
    if args.no_peers:
        command.append("--no-peers")
    cpu = None
    if threads == "1" and hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
    preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    child = subprocess.run(command, stdout=subprocess.PIPE, stderr=log,
                           env=child_environment(path, best, threads), preexec_fn=preexec,
                           text=True, check=True)
    return json.loads(child.stdout), cpu


# --- the report -------------------------------------------------------------------------------

def _gbs(row, key):
    return row["bytes"] / row[key] / 1e9


def _peer_columns(rows, peers):
    return [p for p in peers if any(f"{p}_s" in r for r in rows)]


def fastest_peer(row, peers):
    """(name, seconds) of the fastest peer timed for this row, or (None, None)."""
    timed = [(row[f"{p}_s"], p) for p in peers if f"{p}_s" in row]
    if not timed:
        return None, None
    seconds, name = min(timed)
    return name, seconds


def format_table(rows, peers):
    peer_cols = _peer_columns(rows, peers)
    head = ["shape", "labels", "mode", "thr", "path", "fastxent GB/s", "ns/row", "x read",
            "x NumPy"]
    head += [f"x {p}" for p in peer_cols] + (["x fastest peer"] if peer_cols else [])
    head += ["read GB/s", "check"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"{r['shape'][0]}x{r['shape'][1]} {r['dtype']}", r["labels"],
                 "loss+grad" if r["grad"] else "loss", r["threads"], r["path"],
                 f"{_gbs(r, 'fastxent_s'):.2f}", f"{1e9 * r['fastxent_s'] / r['shape'][0]:.1f}",
                 f"{r['fastxent_s'] / r['read_inputs_s']:.2f}",
                 f"{r['numpy_s'] / r['fastxent_s']:.1f}"]
        for p in peer_cols:
            key = f"{p}_s"
            cells.append(f"{r[key] / r['fastxent_s']:.1f}" if key in r else "-")
        if peer_cols:
            name, seconds = fastest_peer(r, peer_cols)
            cells.append(f"{seconds / r['fastxent_s']:.1f} ({name})" if name else "-")
        cells += [f"{_gbs(r, 'read_s'):.1f}", "OK" if r["matches_reference"] else "MISMATCH"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_lines(rows):
    one = {(tuple(r["shape"]), r["dtype"], r["labels"], r["grad"], r["path"]): r for r in rows
           if r["threads"] == "1"}
    out = []
    for r in rows:
        key = (tuple(r["shape"]), r["dtype"], r["labels"], r["grad"], r["path"])
        if r["threads"] == "all" and key in one:
            speedup = one[key]["fastxent_s"] / r["fastxent_s"]
            out.append(f"{key[0][0]}x{key[0][1]} {key[1]} {key[2]} "
                       f"{'loss+grad' if key[3] else 'loss'} ({key[4]}): {speedup:.2f}x")
    return out


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m fastxent bench", description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=None,
                        help=f"comma-separated NxC[:dtype] (default {DEFAULT_SHAPES}; "
                             f"with --device gpu {GPU_SHAPES})")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: the CUDA kernels on CuPy arrays (needs CuPy and a GPU)")
    parser.add_argument("--threads", choices=["1", "all", "both"], default="both")
    parser.add_argument("--min-time", type=float, default=0.4,
                        help="seconds of repeated calls per measurement (default 0.4)")
    parser.add_argument("--path", default=None,
                        help="kernel path to time: one of the CPU's paths (python -m fastxent "
                             "info), or 'all' for each; default: the one in use")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip PyTorch (eager and torch.compile) and JAX")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import fastxent
    from fastxent import _cpu

    if args.shapes is None:
        args.shapes = GPU_SHAPES if args.device == "gpu" else DEFAULT_SHAPES
    try:
        cases = parse_shapes(args.shapes)
    except ValueError as error:
        parser.error(f"--shapes {args.shapes!r}: {error}; expected NxC[:dtype],...")
    peers = {} if args.no_peers else installed_peers()
    log = sys.stderr
    if args.device == "gpu":
        try:
            import cupy
            cupy.zeros(1).sum()
        except Exception as error:  # CuPy missing, or no driver or device
            print(f"bench --device gpu needs CuPy and a CUDA GPU (pip install "
                  f"'fastxent[cuda]'): {error}", file=sys.stderr)
            return 2
        rows = gpu_cases(cases, args.min_time, log)
        from fastxent import _cuda

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
    available = _cpu.info()["paths"]
    if args.path is None:
        args.path = _cpu.info()["path"]
    if args.path != "all" and args.path not in available:
        parser.error(f"--path {args.path!r}: this CPU runs {', '.join(available)} (or 'all')")
    paths = available if args.path == "all" else [args.path]
    if args.child:
        threads = 1 if args.threads == "1" else None
        json.dump(run_cases(cases, threads, args.min_time, peers, paths, log), sys.stdout)
        return 0

    rows, pinned = [], None
    cpu = cpu_facts()
    print(f"fastxent bench: {len(cases)} shapes, kernel paths {', '.join(paths)}; peers: "
          f"{', '.join(f'{k} {v}' for k, v in peers.items()) or 'none installed'}", file=log)
    for threads in ("1", "all"):
        if args.threads not in (threads, "both"):
            continue
        for path in paths:
            print(f"{'one thread (child process pinned to one core)' if threads == '1' else 'all threads'}"
                  f", kernel path {path}:", file=log)
            child_rows, cpu_used = run_child(args, path, available[0], threads, log)
            rows += child_rows
            pinned = cpu_used if cpu_used is not None else pinned

    info = _cpu.info()
    print(f"fastxent {fastxent.__version__} (kernel paths timed: {', '.join(paths)}; this CPU "
          f"runs {', '.join(info['paths'])}; OpenMP {'on' if info['openmp'] else 'off'}, "
          f"{info['max_threads']} threads), NumPy {np.__version__}"
          + "".join(f", {k} {v}" for k, v in peers.items() if k != "torch.compile"))
    print(f"CPU: {cpu['model']} ({cpu['machine']}, {os.cpu_count()} CPUs; "
          f"{' '.join(cpu['isa']) or 'no listed vector ISA'})"
          + (f"; single-thread runs pinned to CPU {pinned}" if pinned is not None else ""))
    print("GB/s = logits bytes / median time. 'x read' = fastxent's time / the time of one read "
          "of its inputs (np.max over the logits, plus the labels for dense). 'x NumPy', "
          "'x <peer>' = their time / fastxent's time (above 1: fastxent is faster); for a path "
          "below this CPU's best the peers run with their instruction set capped to the same "
          "class (XLA_FLAGS=--xla_cpu_max_isa, ATEN_CPU_CAPABILITY). loss+grad writes into a "
          "reused grad_out.\n")
    for path in paths:
        if len(paths) > 1:
            print(f"kernel path {path}:\n")
        print(format_table([r for r in rows if r["path"] == path], peers) + "\n")
    scaling = scaling_lines(rows)
    if scaling:
        print("\nall threads / one thread (fastxent): " + "; ".join(scaling))
    mismatches = [r for r in rows if not r["matches_reference"]]
    print(f"\nreference check: {len(rows) - len(mismatches)} of {len(rows)} results match "
          f"the NumPy reference (rtol 1e-4)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.machine(), "cpus": os.cpu_count(), "cpu": cpu,
                       "kernel": info, "paths": paths, "peers": peers, "rows": rows}, f,
                      indent=1)
    return 1 if mismatches else 0


# --- the GPU benchmark (python -m fastxent bench --device gpu) ---------------------------------

GPU_SHAPES = "8192x1000,8192x32000,4096x128256,8192x1000:float16,8192x32000:float16,4096x128256:float16"


def gpu_cases(cases, min_time, log):
    """Time fastxent's CUDA kernels against PyTorch on CUDA, a CuPy composition and a
    device-to-device copy, with CUDA events; returns rows like run_cases.

    Inputs smaller than a few times the GPU's L2 cache are replicated and the calls
    rotate among the copies, so that every call reads from device memory."""
    import cupy

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
