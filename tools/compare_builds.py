"""Time this build against a previous one, side by side in one process, on the benchmark's
workload (or other shapes): the check that no case got slower.

The previous build is a checkout built in place (``python setup.py build_ext --inplace``
there, e.g. in a ``git worktree`` of an older commit); its package is copied under another
name, ``fastxent_previous``, so that both import in this process, and each case's calls
alternate between the two in rounds, so that a slower stretch of a shared machine hits both
alike. One thread; pin it to one core:

    taskset -c 0 python tools/compare_builds.py /tmp/previous [--path avx2] [--shapes ...]
"""

import argparse
import importlib
import pathlib
import shutil
import sys
import tempfile

import numpy as np

import fastxent
from fastxent._backends import _kernels
from fastxent._bench.run import DEFAULT_SHAPES, interleaved_timings
from fastxent._bench.workload import dense_labels, make_inputs, parse_shapes


def import_previous(checkout):
    """The previous build's package, imported as ``fastxent_previous``."""
    source = pathlib.Path(checkout) / "fastxent"
    if not any(source.glob("**/_kernels*.so")) and not any(source.glob("**/_kernels*.pyd")):
        raise SystemExit(f"{source} has no built kernels: run python setup.py build_ext "
                         f"--inplace in {checkout} first")
    where = pathlib.Path(tempfile.mkdtemp())
    shutil.copytree(source, where / "fastxent_previous")
    sys.path.insert(0, str(where))
    import fastxent_previous

    # the kernels and the backend registry: in _backends/ since the layers have folders
    folders = (source / "_backends").is_dir()
    kernels = importlib.import_module(
        "fastxent_previous._backends._kernels" if folders else "fastxent_previous._kernels")
    registry = importlib.import_module(
        "fastxent_previous._backends" if folders else "fastxent_previous._backend").REGISTRY
    for library, module in registry.items():   # its own backends, not this build's
        registry[library] = module.replace("fastxent.", "fastxent_previous.", 1)
    return fastxent_previous, kernels


def call(module, logits, labels, y, grad, grad_out, general):
    if y is None:   # validate=True: the same answer, by the general path instead of the fast one
        return lambda: module.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=grad, grad_out=grad_out if grad else None,
            n_threads=1, validate=True if general else None)
    return lambda: module.nn.softmax_cross_entropy_with_logits(
        labels=y, logits=logits, return_grad=grad, grad_out=grad_out if grad else None,
        n_threads=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("previous", help="a checkout of the previous build, built in place")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    parser.add_argument("--path", default=_kernels.path())
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--general", action="store_true",
                        help="sparse calls by the general path (validate=True), not the fast one")
    args = parser.parse_args()
    previous, previous_kernels = import_previous(args.previous)
    previous_kernels.set_path(args.path)
    _kernels.set_path(args.path)
    print(f"path {args.path}, one thread; median of {args.rounds} x {args.runs} calls each, "
          f"alternating\n")
    print("| case | previous ms | this build ms | this / previous |")
    print("| --- | --- | --- | --- |")
    for shape, dtype in parse_shapes(args.shapes):
        logits, labels = make_inputs(shape, dtype)
        grad_out = np.empty_like(logits)
        for kind in ("sparse", "dense"):
            y = None if kind == "sparse" else dense_labels(labels, shape, dtype)
            for grad in (False, True):
                calls = {"previous": call(previous, logits, labels, y, grad, grad_out,
                                          args.general),
                         "this": call(fastxent, logits, labels, y, grad, grad_out, args.general)}
                # no time budget: exactly `runs` calls of each per round
                timings = interleaved_timings(calls, 0.0, args.rounds, args.rounds * args.runs)
                times = {name: t["median"] for name, t in timings.items()}
                print(f"| {shape[0]}x{shape[1]} {dtype.name} {kind} "
                      f"{'loss+grad' if grad else 'loss'} | {times['previous'] * 1e3:.3f} | "
                      f"{times['this'] * 1e3:.3f} | {times['this'] / times['previous']:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
