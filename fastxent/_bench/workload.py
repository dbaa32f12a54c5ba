"""The benchmark's workload: shapes from the command line, the class-count sweep, the small
calls, and their inputs."""

import numpy as np

# The sweep: every class count a user is likely to have, at about SWEEP_LOGITS logits per
# call, in every dtype; --quick takes a subset.
SWEEP_CLASSES = (2, 10, 32, 64, 65, 100, 128, 256, 1000, 32000, 128256)
SWEEP_DTYPES = ("float32", "float16", "bfloat16", "float64")
SWEEP_LOGITS = 2_000_000
QUICK_CLASSES = (2, 10, 65, 128, 1000, 32000)
QUICK_DTYPES = ("float32", "float16")
QUICK_LOGITS = 500_000
# The peers are timed on the sweep's float32 cases; the other dtypes are held to fastxent's
# float32 time at the same shape.
PEER_DTYPES = ("float32",)
# The small calls: a minibatch's worth of logits.
CALLS_SHAPE = (64, 10)


def bench_dtype(name):
    """The NumPy dtype called ``name``; "bfloat16" is ml_dtypes' (ValueError without it)."""
    if str(name) == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ValueError("bfloat16 needs ml_dtypes (pip install ml_dtypes)") from None
        return np.dtype(ml_dtypes.bfloat16)
    dtype = np.dtype(name)
    if dtype.kind != "f":
        raise ValueError(f"logits are floats (float16, bfloat16, float32, float64), not {dtype}")
    return dtype


def parse_shapes(text):
    """``"NxC[:dtype],..."`` to a list of ((N, C), dtype); N and C at least 1."""
    cases = []
    for item in text.split(","):
        shape, _, dtype = item.strip().partition(":")
        rows, cols = (int(v) for v in shape.lower().split("x"))
        if rows < 1 or cols < 1:
            raise ValueError(f"{item.strip()!r}: rows and classes must be at least 1")
        cases.append(((rows, cols), bench_dtype(dtype or "float32")))
    return cases


def sweep_cases(classes, dtypes, logits):
    """((N, C), dtype) for every class count and dtype, N = logits // C (at least 8 rows)."""
    return [((max(logits // c, 8), c), dtype) for c in classes for dtype in dtypes]


def available_dtypes(names):
    """The dtypes of ``names`` that can be made here (bfloat16 needs ml_dtypes)."""
    found = []
    for name in names:
        try:
            found.append(bench_dtype(name))
        except ValueError:
            pass
    return found


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


def call_forms(logits, labels):
    """The common ways of calling fastxent on one minibatch: name -> a call without
    arguments. The first is the plain call the others are held to."""
    import fastxent

    nn, losses = fastxent.nn, fastxent.losses
    grad_out = np.empty_like(logits)
    out = np.empty(labels.shape, logits.dtype)
    labels32 = labels.astype(np.int32)
    weights = np.random.default_rng(1).random(labels.shape)
    forms = {
        "nn, loss (the plain call)": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits),
        "nn, loss + gradient": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=True),
        "nn, grad_out=": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, return_grad=True, grad_out=grad_out),
        "nn, out=": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, out=out),
        "nn, n_threads=1": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, n_threads=1),
        "nn, n_threads=-1": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits, n_threads=-1),
        "nn, int32 labels": lambda: nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels32, logits=logits),
        "losses, weights array, grad_out=": lambda: losses.sparse_softmax_cross_entropy(
            labels, logits, weights, return_grad=True, grad_out=grad_out),
    }
    for name in ("none", "sum", "mean", "sum_over_batch_size", "sum_by_nonzero_weights",
                 "weighted_sum", "weighted_mean", "weighted_sum_over_batch_size",
                 "weighted_sum_by_nonzero_weights"):
        forms[f"losses, reduction={name!r}"] = (
            lambda name=name: losses.sparse_softmax_cross_entropy(labels, logits, reduction=name))
    forms["losses, weights array, 'mean'"] = lambda: losses.sparse_softmax_cross_entropy(
        labels, logits, weights, reduction="mean")
    return forms
