"""A float64 NumPy reference for the contract (SPEC sections 2 to 5).

Written for clarity, not speed: whole-array NumPy, class axis last. The loss
is computed as ``log1p(r) + (m - x_t)`` with ``r = sum(exp(x - m)) - 1`` taken
over the entries below the max, so tiny losses are exact here too.
"""

import numpy as np

TOLERANCES = {
    # dtype: (relative tolerance of the loss, absolute tolerance of a unit-scale gradient)
    np.dtype(np.float64): (1e-12, 1e-15),
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float16): (2.0**-10, 2.0**-10),
}
try:
    import ml_dtypes
    TOLERANCES[np.dtype(ml_dtypes.bfloat16)] = (2.0**-7, 2.0**-7)
except ImportError:  # bfloat16 is tested where ml_dtypes is installed
    ml_dtypes = None


def _tiny(dtype):
    """The smallest normal number of a float dtype (bfloat16's from ml_dtypes)."""
    return float(np.finfo(dtype).tiny if np.dtype(dtype).kind == "f" else ml_dtypes.finfo(dtype).tiny)


def _normalizer(x):
    """(m, r, bad): max, sum(exp(x - m)) - 1 computed without cancellation, non-finite rows."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True) if x.shape[-1] else np.full(x.shape[:-1] + (1,), -np.inf)
        bad = ~np.isfinite(m[..., 0])
        safe_m = np.where(np.isfinite(m), m, 0.0)
        at_max = x == safe_m
        below = np.where(at_max, 0.0, np.exp(x - safe_m))
        r = below.sum(axis=-1) + (at_max.sum(axis=-1) - 1)
    return safe_m, r, bad


def sparse(labels, logits):
    """Per-row loss and gradient ``softmax - onehot`` (float64)."""
    x = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    m, r, bad = _normalizer(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        target = np.take_along_axis(x, labels[..., None].astype(np.intp), axis=-1)[..., 0]
        loss = np.asarray(np.log1p(r) + (m[..., 0] - target))
        p = np.exp(x - m) / (1.0 + r)[..., None]
    grad = p - (np.arange(x.shape[-1]) == labels[..., None])
    loss[bad] = np.nan
    grad[bad] = np.nan
    return loss, grad


def dense(labels, logits, a=1.0, b=0.0):
    """Per-row loss, gradient ``softmax * sum(y) - y`` and labels gradient, for ``y = a * labels + b``."""
    x = np.asarray(logits, np.float64)
    y = a * np.broadcast_to(np.asarray(labels, np.float64), x.shape) + b
    if x.shape[-1] == 0:
        return np.zeros(x.shape[:-1]), np.zeros(x.shape), np.zeros(x.shape)
    m, r, bad = _normalizer(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        log_s = np.log1p(r)[..., None]
        neg_log_p = log_s + (m - x)
        terms = np.where(y != 0, y * neg_log_p, 0.0)
        loss = np.asarray(terms.sum(axis=-1))
        p = np.exp(x - m) / (1.0 + r)[..., None]
        grad = p * y.sum(axis=-1, keepdims=True) - y
        labels_grad = a * neg_log_p
    loss[bad] = np.nan
    grad[bad] = np.nan
    labels_grad[bad] = np.nan
    return loss, grad, labels_grad


def _denominator(w, reduction):
    return {
        "none": 1.0,
        "weighted_sum": 1.0,
        "weighted_mean": w.sum(),
        "weighted_sum_by_nonzero_weights": float(np.count_nonzero(w)),
        "weighted_sum_over_batch_size": float(w.size),
    }[reduction]


def weighted(losses, weights, reduction):
    """``compute_weighted_loss`` in float64: (result, d result / d losses)."""
    losses = np.asarray(losses, np.float64)
    w = np.broadcast_to(np.asarray(weights, np.float64), losses.shape)
    weighted_losses = losses * w
    if reduction == "none":
        return weighted_losses, w
    denominator = _denominator(w, reduction)
    if denominator == 0:
        return 0.0, np.zeros_like(w)
    return weighted_losses.sum() / denominator, w / denominator


def weighted_rows(row_loss, row_grad, weights, reduction):
    """A weighted, reduced loss and its logits gradient from per-row losses and gradients."""
    result, factor = weighted(row_loss, weights, reduction)
    w = np.broadcast_to(np.asarray(weights, np.float64), np.shape(row_loss))
    if _denominator(w, reduction) == 0:
        return result, np.zeros_like(row_grad)  # exactly 0, even for NaN rows
    with np.errstate(invalid="ignore"):
        return result, row_grad * np.asarray(factor)[..., None]


def assert_loss_close(actual, expected, dtype):
    """Loss within the dtype's relative tolerance (NaN and infinities must match).

    Subnormal results have fewer significant bits than the relative tolerance
    asks for, so the smallest normal number of the dtype is allowed absolutely.
    """
    rtol, _ = TOLERANCES[np.dtype(dtype)]
    with np.errstate(over="ignore"):
        expected_in_dtype = np.asarray(expected).astype(dtype).astype(np.float64)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected_in_dtype,
                               rtol=rtol, atol=_tiny(dtype), equal_nan=True)


def assert_grad_close(actual, expected, dtype, scale=1.0):
    """Gradient within the dtype's absolute tolerance times the largest ``|scale|``."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    scale = float(np.max(np.abs(scale))) if np.size(scale) else 1.0
    expected_in_dtype = np.asarray(expected).astype(dtype).astype(np.float64)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected_in_dtype,
                               rtol=rtol, atol=atol * max(scale, 1.0), equal_nan=True)
