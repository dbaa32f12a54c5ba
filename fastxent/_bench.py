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

from fastxent import _bench_report as report
from fastxent._bench_workload import dense_labels, make_inputs, parse_shapes
from fastxent._bench_gpu import GPU_SHAPES

DEFAULT_SHAPES = "65536x10,8192x1000,1024x32000,128x128256,100000x10:float64"
PEERS = ("torch", "torch.compile", "jax")
# The CPU features the kernel paths care about, as /proc/cpuinfo names them.
ISA_FLAGS = ("sse2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
             "asimd", "sve", "sve2")


# --- timing -----------------------------------------------------------------------------------

def timing(call, min_time, min_runs=5, max_runs=200):
    """``{"min", "median", "max", "runs"}`` of ``call``'s wall time after one warm-up call."""
    call()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < min_time and len(times) < max_runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"min": min(times), "median": float(np.median(times)), "max": max(times),
            "runs": len(times)}


def median_seconds(call, min_time, min_runs=5, max_runs=200):
    """Median wall time of ``call`` after one warm-up call."""
    return timing(call, min_time, min_runs, max_runs)["median"]


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

MODES = [(kind, grad) for kind in ("sparse", "dense") for grad in (False, True)]


def run_cases(cases, threads, min_time, peers, paths, log):
    """Time every case in this process, yielding one row per case and kernel path as it
    finishes; ``threads`` is 1 or None (all). The read floor, NumPy and the peers are
    timed once per case, fastxent once per kernel path."""
    from fastxent import _kernels

    if threads == 1 and "torch" in peers:
        import torch
        torch.set_num_threads(1)
    active = _kernels.path()
    for shape, dtype in cases:
        logits, labels = make_inputs(shape, dtype)
        grad_out = np.empty_like(logits)
        read = timing(lambda: np.max(logits.reshape(-1)), min_time)
        for kind, grad in MODES:
            y = None if kind == "sparse" else dense_labels(labels, shape, dtype)
            # one read of the inputs: the logits, plus the labels for dense ones
            read_inputs = read["median"] if y is None else read["median"] + median_seconds(
                lambda: np.max(y.reshape(-1)), min_time)
            want = numpy_reference(logits, labels, y, grad)
            times = {"read": read, "numpy": timing(
                lambda: numpy_reference(logits, labels, y, grad), min_time / 2, min_runs=3)}
            for peer in peers:
                if dtype == np.float16 and peer.startswith("torch"):
                    continue
                try:
                    times[peer] = timing(PEER_CALLS[peer](logits, labels, y, grad), min_time)
                except Exception as error:  # a peer that cannot run this case is skipped
                    print(f"    {peer} failed on {shape} {dtype}: {error!r}", file=log)
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
                    path_times = {**times, "fastxent": timing(ours, min_time)}
                finally:
                    _kernels.set_path(active)
                yield {"shape": list(shape), "dtype": dtype.name, "labels": kind, "grad": grad,
                       "threads": "1" if threads == 1 else "all", "path": path,
                       "bytes": logits.nbytes, "read_inputs_s": read_inputs,
                       **{f"{name}_s": t["median"] for name, t in path_times.items()},
                       "times": path_times, "matches_reference": ok}


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


ROW_PREFIX = "fastxent-bench-row "


def run_child(args, path, best, threads, log):
    """Time one kernel path in a child process, yielding its rows as they finish: pinned to
    one core for one thread (so that every library's thread pool lives on that core), free
    otherwise. Returns (through StopIteration) the CPU it was pinned to, or None."""
    command = [sys.executable, "-m", "fastxent", "bench", "--threads", threads, "--child",
               "--shapes", args.shapes, "--min-time", str(args.min_time), "--path", path]
    if args.no_peers:
        command.append("--no-peers")
    elif args.peers is not None:
        command += ["--peers", ",".join(args.peers)]
    cpu = None
    if threads == "1" and hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
    preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                          env=child_environment(path, best, threads), preexec_fn=preexec) as child:
        for line in child.stdout:
            if line.startswith(ROW_PREFIX):
                yield json.loads(line[len(ROW_PREFIX):])
            else:  # something a library printed: pass it on
                log.write(line)
    if child.returncode != 0:
        raise RuntimeError(f"the benchmark's child process ({' '.join(command[1:])}) "
                           f"exited with {child.returncode}")
    return cpu


# --- the command -----------------------------------------------------------------------------

QUICK_SHAPES = "16384x10,2048x1000,256x32000,32x128256,25000x10:float64"
QUICK_MIN_TIME = 0.05


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m fastxent bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=None,
                        help=f"comma-separated NxC[:dtype] (default {DEFAULT_SHAPES}; with "
                             f"--quick {QUICK_SHAPES}; with --device gpu {GPU_SHAPES})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a quarter of each default shape's rows and --min-time "
                             f"{QUICK_MIN_TIME}: a look in a fraction of the time")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: the CUDA kernels on CuPy arrays (needs CuPy and a GPU)")
    parser.add_argument("--threads", choices=["1", "all", "both"], default="both")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds of repeated calls per measurement (default 0.4)")
    parser.add_argument("--path", default=None,
                        help="kernel path to time: one of the CPU's paths (python -m fastxent "
                             "info), or 'all' for each; default: the one in use")
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated peers to time, of {','.join(PEERS)} (default: "
                             f"those installed; with --quick all but torch.compile, whose "
                             f"compilations would take most of the run)")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip PyTorch (eager and torch.compile) and JAX")
    parser.add_argument("--json", metavar="FILE",
                        help="write the figures here, rewritten as each result arrives: versions, "
                             "date, CPU, kernel paths, and each time's min, median and max")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw fastxent's speedup over NumPy and each peer, per case "
                             "(needs matplotlib: pip install \"fastxent[bench]\")")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.min_time is None:
        args.min_time = QUICK_MIN_TIME if args.quick else 0.4
    if args.shapes is None:
        args.shapes = (GPU_SHAPES if args.device == "gpu"
                       else QUICK_SHAPES if args.quick else DEFAULT_SHAPES)
    if args.peers is not None:
        args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
        unknown = [p for p in args.peers if p not in PEERS]
        if unknown:
            parser.error(f"--peers: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    elif args.quick:
        args.peers = [p for p in PEERS if p != "torch.compile"]
    try:
        args.cases = parse_shapes(args.shapes)
    except ValueError as error:
        parser.error(f"--shapes {args.shapes!r}: {error}; expected NxC[:dtype],...")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install matplotlib "
                         "(or pip install \"fastxent[bench]\")")
    return parser, args


def main(argv):
    parser, args = parse_args(argv)
    peers = {} if args.no_peers else installed_peers()
    if args.peers is not None:
        peers = {name: version for name, version in peers.items() if name in args.peers}
    if args.device == "gpu":
        from fastxent._bench_gpu import main as gpu_main

        return gpu_main(args, peers)

    from fastxent import _cpu

    available = _cpu.info()["paths"]
    if args.path is None:
        args.path = _cpu.info()["path"]
    if args.path != "all" and args.path not in available:
        parser.error(f"--path {args.path!r}: this CPU runs {', '.join(available)} (or 'all')")
    paths = available if args.path == "all" else [args.path]
    log = sys.stderr
    if args.child:
        threads = 1 if args.threads == "1" else None
        for row in run_cases(args.cases, threads, args.min_time, peers, paths, log):
            print(ROW_PREFIX + json.dumps(row), flush=True)
        return 0

    cpu = cpu_facts()
    thread_modes = [t for t in ("1", "all") if args.threads in (t, "both")]
    progress = report.Progress(len(args.cases) * len(MODES) * len(paths) * len(thread_modes), log)
    writer = report.JsonWriter(args.json, report.metadata(argv, cpu, paths, peers, args.min_time))
    print(f"fastxent bench: {len(args.cases)} shapes x {len(MODES)} modes x {len(paths)} kernel "
          f"path(s) x {len(thread_modes)} thread count(s) = {progress.total} results; peers: "
          f"{', '.join(f'{k} {v}' for k, v in peers.items()) or 'none installed'}", file=log)
    rows, pinned = [], None
    try:
        for threads in thread_modes:
            for path in paths:
                child = run_child(args, path, available[0], threads, log)
                while True:
                    try:
                        row = next(child)
                    except StopIteration as done:
                        pinned = done.value if done.value is not None else pinned
                        break
                    rows.append(row)
                    progress.update(row, peers)
                    writer.write(rows)
    finally:
        progress.close()
    writer.write(rows, complete=True)
    print_report(rows, paths, peers, cpu, pinned)
    if args.plot:
        report.plot(rows, peers, args.plot, plot_title(cpu, paths))
        print(f"\nplot: {args.plot}")
    return 0 if all(r["matches_reference"] for r in rows) else 1


def plot_title(cpu, paths):
    import fastxent

    return (f"fastxent {fastxent.__version__} against NumPy and its peers on {cpu['model']} "
            f"({os.cpu_count()} CPUs; kernel path {', '.join(paths)})")


def print_report(rows, paths, peers, cpu, pinned):
    import fastxent
    from fastxent import _cpu

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
          "class (XLA_FLAGS=--xla_cpu_max_isa, ATEN_CPU_CAPABILITY). 'all thr / 1 thr' = "
          "fastxent's one-thread time / its all-thread time. loss+grad writes into a reused "
          "grad_out.\n")
    for path in paths:
        if len(paths) > 1:
            print(f"kernel path {path}:\n")
        print(report.format_table([r for r in rows if r["path"] == path], peers) + "\n")
    mismatches = [r for r in rows if not r["matches_reference"]]
    print(f"reference check: {len(rows) - len(mismatches)} of {len(rows)} results match "
          f"the NumPy reference (rtol 1e-4)")
