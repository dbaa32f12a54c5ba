"""The benchmark's workload: shapes from the command line, and their inputs."""

import numpy as np


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
