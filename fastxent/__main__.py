"""``python -m fastxent [bench|check|info]`` (``--help`` on each).

``bench`` (the main job) times fastxent against NumPy, the read floor and the
installed peers on a built-in workload (``python -m fastxent bench --help``).
``check`` (the default) and ``info`` print the versions and the kernel path in
use, and check one loss and gradient against a float64 NumPy reference; they
exit 1 if the two disagree. ``info`` also lists the optional packages found.
"""

import argparse
import importlib.metadata
import importlib.util
import platform
import sys

import numpy as np

import fastxent
from fastxent._backends import cpu as _cpu


def _reference(labels, logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    rows = np.arange(len(labels))
    grad = np.exp(log_softmax)
    grad[rows, labels] -= 1
    return -log_softmax[rows, labels], grad


def self_check(out=sys.stdout):
    """Print the installation's facts and check one computation; return 0 when it agrees."""
    info = _cpu.info()
    print(f"fastxent {fastxent.__version__}, NumPy {np.__version__}, "
          f"Python {platform.python_version()} on {platform.machine()}", file=out)
    print(f"CPU kernels: path {info['path']} (this CPU supports {', '.join(info['paths'])}; "
          f"FASTXENT_CPU_PATH picks another), OpenMP {'on' if info['openmp'] else 'off'}, "
          f"{info['max_threads']} threads by default", file=out)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((512, 1000)).astype(np.float32) * 4
    labels = rng.integers(0, 1000, 512)
    loss, grad = fastxent.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, return_grad=True)
    want_loss, want_grad = _reference(labels, logits.astype(np.float64))
    loss_err = float(np.max(np.abs(loss - want_loss) / np.abs(want_loss)))
    grad_err = float(np.max(np.abs(grad - want_grad)))
    ok = loss_err < 1e-5 and grad_err < 1e-6
    print(f"sparse cross-entropy, float32 (512, 1000): mean loss {float(loss.mean()):.6f}; "
          f"max relative loss error {loss_err:.2e}, max gradient error {grad_err:.2e} "
          f"against a float64 reference: {'OK' if ok else 'MISMATCH'}", file=out)
    return 0 if ok else 1


# What each optional extra brings, by the import name that tells whether it is there.
EXTRAS = {"cupy": "cuda", "dask": "dask", "distributed": "dask", "sklearn": "sklearn",
          "scipy": "sklearn (and the compiled linear pass's BLAS)", "torch": "peers",
          "jax": "peers", "optax": "peers", "tqdm": "bench (a progress bar)",
          "matplotlib": "bench (--plot)", "ml_dtypes": "bfloat16 inputs"}
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "cupy": None}


def _version(module):
    names = [_DISTRIBUTIONS.get(module, module)] if module != "cupy" else [
        d.metadata["Name"] for d in importlib.metadata.distributions()
        if (d.metadata["Name"] or "").lower().startswith("cupy")]
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "found"


def optional_packages(out=sys.stdout):
    """Print which optional packages are installed (found without importing them)."""
    for module, extra in EXTRAS.items():
        found = importlib.util.find_spec(module) is not None
        print(f"  {module:12s} {_version(module) if found else 'not installed':16s} {extra}",
              file=out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":
        from fastxent._bench.run import main as bench

        return bench(argv[1:])            # its own options: python -m fastxent bench --help
    parser = argparse.ArgumentParser(prog="python -m fastxent",
                                     description="fastxent's command line.")
    commands = parser.add_subparsers(dest="command", metavar="{bench,check,info}")
    commands.add_parser("bench", add_help=False,
                        help="time fastxent against NumPy and the installed peers "
                             "(python -m fastxent bench --help)")
    commands.add_parser("check", help="the versions, the kernel path and one checked "
                                      "computation (the default)")
    commands.add_parser("info", help="as check, and the optional packages found")
    args = parser.parse_args(argv)
    status = self_check()
    if args.command == "info":
        print("optional packages (pip install \"fastxent[EXTRA]\"):")
        optional_packages()
    return status


if __name__ == "__main__":
    sys.exit(main())
