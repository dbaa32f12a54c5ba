"""``python -m fastxent [bench|check|info]``.

``bench`` (the main job) times fastxent against NumPy, the read floor and the
installed peers on a built-in workload (``python -m fastxent bench --help``).
``check`` (the default) and ``info`` print the versions and the kernel path in
use, and check one loss and gradient against a float64 NumPy reference; they
exit 1 if the two disagree.
"""

import platform
import sys

import numpy as np

import fastxent
from fastxent import _cpu


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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "check"
    if command == "bench":
        from fastxent._bench import main as bench

        return bench(argv[1:])
    if command in ("check", "info"):
        return self_check()
    print(f"usage: python -m fastxent [bench|check|info]\nunknown command {command!r}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
