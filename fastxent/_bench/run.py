"""``python -m fastxent bench``: fastxent against NumPy, the read floor and the installed peers.

Three parts, each row printed as it finishes:

- the workload: five shapes of the field (``--shapes`` for others), sparse and dense labels,
  loss and loss + gradient, one thread and all; fastxent, a NumPy reference (max / exp / sum /
  log), the streaming-read floor (``np.max`` over the flattened inputs: reading them once)
  and every installed peer (PyTorch ``F.cross_entropy`` eager and under ``torch.compile``
  (Inductor), JAX/optax under ``jit``);
- the sweep: every class count from 2 to 128256 at about two million logits per call, in
  float32, float16, bfloat16 and float64, sparse loss and loss + gradient, one thread; the
  peers on float32, the other dtypes held to fastxent's float32 time;
- the small calls: each common way of calling on a 64 x 10 minibatch, in microseconds per
  call and against the plain call.

Single-thread figures come from a child process pinned to one core (every library's threads
included), all-thread figures from this process. Each fastxent result is checked against
the NumPy reference. The CPU model, its instruction sets and the kernel path are printed
with the tables and kept in the JSON.
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

from fastxent._bench import report, workload
from fastxent._bench.workload import dense_labels, make_inputs, parse_shapes
from fastxent._bench.gpu import GPU_SHAPES

DEFAULT_SHAPES = "65536x10,8192x1000,1024x32000,128x128256,100000x10:float64"
PARTS = ("workload", "sweep", "calls")
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


def interleaved_timings(calls, min_time, rounds=4, min_runs=5, max_runs=200):
    """``timing`` of each of ``calls`` (name -> call), taken in ``rounds`` turns of about
    ``min_time / rounds`` each, so that a slower stretch of a shared machine hits every
    contender alike instead of whichever was timed then."""
    samples = {name: [] for name in calls}
    for name, call in calls.items():
        call()
    for turn in range(rounds):
        for name, call in calls.items():
            budget, start = min_time / rounds, time.perf_counter()
            runs = samples[name]
            while (len(runs) < min_runs * (turn + 1) // rounds
                   or (time.perf_counter() - start < budget and len(runs) < max_runs)):
                t0 = time.perf_counter()
                call()
                runs.append(time.perf_counter() - t0)
    return {name: {"min": min(t), "median": float(np.median(t)), "max": max(t), "runs": len(t)}
            for name, t in samples.items()}


# --- the contestants --------------------------------------------------------------------------

def numpy_reference(logits, labels, y, grad):
    x = logits.astype(np.float32) if logits.dtype.itemsize == 2 else logits
    y = y.astype(np.float32) if y is not None and y.dtype.itemsize == 2 else y
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
SPARSE_MODES = [("sparse", False), ("sparse", True)]


def tolerance(dtype):
    """The reference check's relative (and absolute) tolerance: a few roundings of the
    dtype, and 1e-4 for float32 (its sums and exps)."""
    if dtype.itemsize == 2:   # float16 and bfloat16: a few of their roundings
        eps = 2.0 ** -10 if dtype == np.float16 else 2.0 ** -7
        return 4 * eps
    return 1e-4 if dtype == np.float32 else 1e-9


def matches(result, want, grad, dtype):
    """Whether fastxent's result matches the NumPy reference within ``tolerance``."""
    rtol = tolerance(dtype)
    got_loss = np.asarray(result[0] if grad else result, np.float64)
    ok = bool(np.allclose(got_loss, want[0] if grad else want, rtol=rtol, atol=rtol / 10))
    if grad:
        ok = ok and bool(np.allclose(np.asarray(result[1], np.float64), want[1], rtol=rtol,
                                     atol=rtol / 10))
    return ok


def run_cases(cases, threads, min_time, peers, paths, log, *, modes=MODES, part="workload",
              peer_dtypes=None, time_numpy=True, together=False):
    """Time every case in this process, yielding one row per case, mode and kernel path as
    each finishes; ``threads`` is 1 or None (all). Per case and mode the read floor, NumPy
    and the peers (on the dtypes of ``peer_dtypes``, all if None) are timed once and
    fastxent once per kernel path, interleaved (``interleaved_timings``); with ``together``,
    the cases of one class count are timed together (the sweep's dtypes, held to float32)."""
    groups = ([[c for c in cases if c[0][1] == cols] for cols in dict.fromkeys(c[0][1] for c in cases)]
              if together else [[c] for c in cases])
    if threads == 1 and "torch" in peers:
        import torch
        torch.set_num_threads(1)
    for group in groups:
        inputs = {(shape, dtype): make_inputs(shape, dtype) for shape, dtype in group}
        for kind, grad in modes:
            yield from _time_group(inputs, kind, grad, threads, min_time, peers, paths, log,
                                   part, peer_dtypes, time_numpy)


def _time_group(inputs, kind, grad, threads, min_time, peers, paths, log, part, peer_dtypes,
                time_numpy):
    """The rows of one mode of a group of cases, all their contenders timed interleaved."""
    calls, checks, facts = {}, {}, {}
    for (shape, dtype), (logits, labels) in inputs.items():
        case = (shape, dtype)
        y = None if kind == "sparse" else dense_labels(labels, shape, dtype)
        want = numpy_reference(logits, labels, y, grad)
        grad_out = np.empty_like(logits)
        calls[case, "read"] = lambda logits=logits: np.max(logits.reshape(-1))
        if y is not None:   # one read of the inputs: the logits, plus the labels for dense ones
            calls[case, "read labels"] = lambda y=y: np.max(y.reshape(-1))
        if time_numpy:
            calls[case, "numpy"] = (lambda logits=logits, labels=labels, y=y:
                                    numpy_reference(logits, labels, y, grad))
        for peer in peers if peer_dtypes is None or dtype.name in peer_dtypes else ():
            if dtype == np.float16 and peer.startswith("torch"):
                continue
            try:
                calls[case, peer] = PEER_CALLS[peer](logits, labels, y, grad)
                calls[case, peer]()
            except Exception as error:  # a peer that cannot run this case is skipped
                calls.pop((case, peer), None)
                print(f"    {peer} failed on {shape} {dtype}: {error!r}", file=log)
        for path in paths:
            ours = fastxent_call(logits, labels, y, grad, threads, grad_out)
            calls[case, ("fastxent", path)] = _on_path(path, ours)
            checks[case, path] = matches(_on_path(path, ours)(), want, grad, dtype)
        facts[case] = logits.nbytes
    times = interleaved_timings(calls, min_time)
    for case, nbytes in facts.items():
        (shape, dtype), base = case, {name: t for (c, name), t in times.items() if c == case}
        read_inputs = base["read"]["median"] + base.get("read labels", {"median": 0.0})["median"]
        base.pop("read labels", None)
        for path in paths:
            path_times = {name: t for name, t in base.items() if not isinstance(name, tuple)}
            path_times["fastxent"] = base["fastxent", path]
            yield {"part": part, "shape": list(shape), "dtype": dtype.name, "labels": kind,
                   "grad": grad, "threads": "1" if threads == 1 else "all", "path": path,
                   "bytes": nbytes, "read_inputs_s": read_inputs,
                   **{f"{name}_s": t["median"] for name, t in path_times.items()},
                   "times": path_times, "matches_reference": checks[case, path]}


def _on_path(path, call):
    """``call`` run on kernel path ``path`` (the active path is restored after)."""
    from fastxent._backends import _kernels

    def run():
        active = _kernels.path()
        _kernels.set_path(path)
        try:
            return call()
        finally:
            _kernels.set_path(active)
    return run


def best_call_seconds(call, min_time, batch=200):
    """The best mean time of ``batch`` back-to-back calls, over about ``min_time``: a small
    call's own cost, with the noise of single timings averaged out."""
    for _ in range(batch // 4):
        call()
    best, spent = float("inf"), 0.0
    while spent < min_time or best == float("inf"):
        start = time.perf_counter()
        for _ in range(batch):
            call()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed / batch), spent + elapsed
    return best


def peer_small_calls(logits, labels, peers):
    """The peers' plain call on the same minibatch, for scale: name -> call."""
    calls = {}
    for peer in peers:
        try:
            calls[peer] = PEER_CALLS[peer](logits, labels, None, False)
        except Exception:   # a peer that cannot run here is left out
            pass
    return calls


def run_calls(min_time, peers, paths, log):
    """Time each common way of calling on one minibatch (``workload.call_forms``), per
    kernel path, and the peers' plain call; yields one row per call."""
    from fastxent._backends import _kernels

    logits, labels = make_inputs(workload.CALLS_SHAPE, np.dtype(np.float32))
    active = _kernels.path()
    for path in paths:
        _kernels.set_path(path)
        try:
            for form, call in workload.call_forms(logits, labels).items():
                yield {"part": "calls", "form": form, "path": path, "threads": "1",
                       "shape": list(workload.CALLS_SHAPE), "dtype": "float32",
                       "call_s": best_call_seconds(call, min_time)}
        finally:
            _kernels.set_path(active)
    for peer, call in peer_small_calls(logits, labels, peers).items():
        yield {"part": "calls", "form": f"peer: {report.CONTENDER_NAMES[peer]}, loss",
               "peer": peer, "path": None, "threads": "1",
               "shape": list(workload.CALLS_SHAPE), "dtype": "float32",
               "call_s": best_call_seconds(call, min_time)}


def run_parts(args, threads, peers, paths, log):
    """The rows of the parts asked for in a child that times ``threads`` (1 or None): the
    sweep and the small calls on one thread only."""
    if "workload" in args.parts:
        yield from run_cases(args.cases, threads, args.min_time, peers, paths, log)
    if threads != 1:
        return
    if "sweep" in args.parts:
        yield from run_cases(args.sweep, 1, args.min_time, peers, paths, log,
                             modes=SPARSE_MODES, part="sweep",
                             peer_dtypes=workload.PEER_DTYPES, time_numpy=False, together=True)
    if "calls" in args.parts:
        yield from run_calls(args.min_time, peers, paths, log)


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
               "--shapes", args.shapes, "--min-time", str(args.min_time), "--path", path,
               "--parts", ",".join(args.parts), "--classes", ",".join(map(str, args.classes)),
               "--dtypes", ",".join(args.dtypes), "--sweep-logits", str(args.sweep_logits)]
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
QUICK_MIN_TIME = 0.03


def _number_list(text, name, parser):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        parser.error(f"--{name} {text!r}: expected comma-separated positive integers")
    return values


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m fastxent bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default=None,
                        help=f"comma-separated parts to run, of {','.join(PARTS)} (default: all "
                             f"three; with --shapes: the workload)")
    parser.add_argument("--shapes", default=None,
                        help=f"the workload's comma-separated NxC[:dtype] (default {DEFAULT_SHAPES}; "
                             f"with --quick {QUICK_SHAPES}; with --device gpu {GPU_SHAPES})")
    parser.add_argument("--classes", default=None,
                        help="the sweep's class counts (default "
                             f"{','.join(map(str, workload.SWEEP_CLASSES))}; with --quick "
                             f"{','.join(map(str, workload.QUICK_CLASSES))})")
    parser.add_argument("--dtypes", default=None,
                        help=f"the sweep's dtypes (default {','.join(workload.SWEEP_DTYPES)}; with "
                             f"--quick {','.join(workload.QUICK_DTYPES)}; bfloat16 needs ml_dtypes)")
    parser.add_argument("--sweep-logits", type=int, default=None,
                        help=f"logits per call in the sweep (default {workload.SWEEP_LOGITS}; "
                             f"with --quick {workload.QUICK_LOGITS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a quarter of each workload shape's rows, a shorter sweep and "
                             f"--min-time {QUICK_MIN_TIME}: a look in about 30 s")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="gpu: the CUDA kernels on CuPy arrays (needs CuPy and a GPU)")
    parser.add_argument("--threads", choices=["1", "all", "both"], default="both",
                        help="the workload's thread counts (the sweep and the small calls run "
                             "on one thread)")
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
                        help="draw the sweep's time per logit against the class count, fastxent "
                             "and each peer a line, and the workload's speedups beside it in "
                             "FILE-workload.png (needs matplotlib: pip install \"fastxent[bench]\")")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.min_time is None:
        args.min_time = QUICK_MIN_TIME if args.quick else 0.4
    if args.parts is None:
        args.parts = ["workload"] if args.shapes is not None else list(PARTS)
    else:
        args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
        unknown = [p for p in args.parts if p not in PARTS]
        if unknown or not args.parts:
            parser.error(f"--parts: unknown {', '.join(unknown) or 'none given'}; choose from "
                         f"{', '.join(PARTS)}")
    if args.shapes is None:
        args.shapes = (GPU_SHAPES if args.device == "gpu"
                       else QUICK_SHAPES if args.quick else DEFAULT_SHAPES)
    args.classes = _number_list(args.classes, "classes", parser) if args.classes else list(
        workload.QUICK_CLASSES if args.quick else workload.SWEEP_CLASSES)
    names = (args.dtypes.split(",") if args.dtypes
             else workload.QUICK_DTYPES if args.quick else workload.SWEEP_DTYPES)
    try:
        dtypes = [workload.bench_dtype(n.strip()) for n in names if n.strip()]
    except (TypeError, ValueError) as error:
        parser.error(f"--dtypes {args.dtypes!r}: {error}")
    if args.dtypes is None:   # the default sweep leaves out what cannot be made here
        dtypes = workload.available_dtypes(names)
    args.dtypes = [d.name for d in dtypes]
    if args.sweep_logits is None:
        args.sweep_logits = workload.QUICK_LOGITS if args.quick else workload.SWEEP_LOGITS
    elif args.sweep_logits < 1:
        parser.error("--sweep-logits must be positive")
    args.sweep = workload.sweep_cases(args.classes, dtypes, args.sweep_logits)
    if args.min_time <= 0:
        parser.error(f"--min-time must be positive, got {args.min_time}")
    if args.peers is not None:
        args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
        unknown = [p for p in args.peers if p not in PEERS]
        if unknown:
            parser.error(f"--peers: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    elif args.quick:
        args.peers = [p for p in PEERS if p != "torch.compile"]
    try:
        args.cases = parse_shapes(args.shapes)
    except (TypeError, ValueError) as error:
        parser.error(f"--shapes {args.shapes!r}: {error}; expected NxC[:dtype],...")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install matplotlib "
                         "(or pip install \"fastxent[bench]\")")
    return parser, args


def result_count(args, paths, thread_modes, peers):
    """How many rows the run gives (the progress counter's total)."""
    count = 0
    for threads in thread_modes:
        if "workload" in args.parts:
            count += len(args.cases) * len(MODES) * len(paths)
        if threads == "1" and "sweep" in args.parts:
            count += len(args.sweep) * len(SPARSE_MODES) * len(paths)
        if threads == "1" and "calls" in args.parts:
            count += len(workload.call_forms(*make_inputs((2, 2), np.dtype(np.float32)))) * len(paths)
            count += len(peers)
    return count


def main(argv):
    parser, args = parse_args(argv)
    peers = {} if args.no_peers else installed_peers()
    if args.peers is not None:
        peers = {name: version for name, version in peers.items() if name in args.peers}
    if args.device == "gpu":
        from fastxent._bench.gpu import main as gpu_main

        return gpu_main(args, peers)

    from fastxent._backends import cpu as _cpu

    available = _cpu.info()["paths"]
    if args.path is None:
        args.path = _cpu.info()["path"]
    if args.path != "all" and args.path not in available:
        parser.error(f"--path {args.path!r}: this CPU runs {', '.join(available)} (or 'all')")
    paths = available if args.path == "all" else [args.path]
    log = sys.stderr
    if args.child:
        threads = 1 if args.threads == "1" else None
        for row in run_parts(args, threads, peers, paths, log):
            print(ROW_PREFIX + json.dumps(row), flush=True)
        return 0

    cpu = cpu_facts()
    thread_modes = [t for t in ("1", "all") if args.threads in (t, "both")]
    if "sweep" in args.parts or "calls" in args.parts:
        thread_modes = sorted(set(thread_modes) | {"1"}, key=("1", "all").index)
    progress = report.Progress(result_count(args, paths, thread_modes, peers), log)
    writer = report.JsonWriter(args.json, report.metadata(argv, cpu, paths, peers, args.min_time))
    print(f"fastxent bench: {', '.join(args.parts)} on {len(paths)} kernel path(s), "
          f"{progress.total} results; peers: "
          f"{', '.join(f'{k} {v}' for k, v in peers.items()) or 'none'}", file=log)
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
        for name in report.plot(rows, peers, args.plot, plot_title(cpu, paths)):
            print(f"plot: {name}")
    return 0 if all(r.get("matches_reference", True) for r in rows) else 1


def plot_title(cpu, paths):
    import fastxent

    return (f"fastxent {fastxent.__version__} against NumPy and its peers on {cpu['model']} "
            f"({os.cpu_count()} CPUs; kernel path {', '.join(paths)})")


def print_report(rows, paths, peers, cpu, pinned):
    import fastxent
    from fastxent._backends import cpu as _cpu

    info = _cpu.info()
    print(f"fastxent {fastxent.__version__} (kernel paths timed: {', '.join(paths)}; this CPU "
          f"runs {', '.join(info['paths'])}; OpenMP {'on' if info['openmp'] else 'off'}, "
          f"{info['max_threads']} threads), NumPy {np.__version__}"
          + "".join(f", {k} {v}" for k, v in peers.items() if k != "torch.compile"))
    print(f"CPU: {cpu['model']} ({cpu['machine']}, {os.cpu_count()} CPUs; "
          f"{' '.join(cpu['isa']) or 'no listed vector ISA'})"
          + (f"; single-thread runs pinned to CPU {pinned}" if pinned is not None else ""))
    print("'x <peer>', 'x NumPy' = their time / fastxent's time (above 1: fastxent is faster); "
          "for a path below this CPU's best the peers run with their instruction set capped to "
          "the same class (XLA_FLAGS=--xla_cpu_max_isa, ATEN_CPU_CAPABILITY). loss+grad writes "
          "into a reused grad_out.\n")
    parts = {r.get("part", "workload") for r in rows}
    for path in paths:
        heading = f" (kernel path {path})" if len(paths) > 1 else ""
        if "workload" in parts:
            print(f"The workload{heading}. GB/s = logits bytes / median time. 'x read' = "
                  f"fastxent's time / the time of one read of its inputs (np.max over the "
                  f"logits, plus the labels for dense). 'all thr / 1 thr' = fastxent's "
                  f"one-thread time / its all-thread time.\n")
            print(report.format_table([r for r in rows if r["path"] == path
                                       and r.get("part", "workload") == "workload"], peers) + "\n")
        if "sweep" in parts:
            print(f"The sweep{heading}: sparse labels, one thread, about "
                  f"{report.sweep_logits(rows)} logits per call. ns/logit = fastxent's median time "
                  f"per logit; '<dtype> x f32' = its time / fastxent's float32 time at that "
                  f"shape.\n")
            print(report.format_sweep([r for r in rows if r["path"] == path
                                       and r.get("part") == "sweep"], peers) + "\n")
        if "calls" in parts:
            print(f"The small calls{heading}: one thread, each the best mean of 200 calls in a "
                  f"row; 'x plain' = its time / the plain call's.\n")
            print(report.format_calls([r for r in rows if r.get("part") == "calls"
                                       and r["path"] in (path, None)]) + "\n")
    checked = [r for r in rows if "matches_reference" in r]
    mismatches = [r for r in checked if not r["matches_reference"]]
    print(f"reference check: {len(checked) - len(mismatches)} of {len(checked)} results match "
          f"the NumPy reference (rtol 1e-4 for float32, a few roundings of the others)")
