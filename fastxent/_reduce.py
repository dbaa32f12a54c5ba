"""Weights and reductions, once, for eager arrays (NumPy, CuPy) and lazy ones (Dask).

A reduction turns per-example losses ``l_i`` and weights ``w_i`` into ``sum(w_i l_i) / D``
with the denominator ``D`` of ``tf.compat.v1.losses.Reduction`` (1, ``sum(w)``, the number of
losses, the number of nonzero weights), or keeps ``w_i l_i`` (``NONE``). The gradient
factor of each example is ``w_i / D``. A zero ``D`` gives exactly 0 and a zero gradient
(TensorFlow's ``div_no_nan``). Everything here is written against an array namespace
``xp`` (``numpy``, ``cupy`` or ``dask.array``), so the denominator is a 0-d array of it:
on Dask it stays lazy until the result is computed.

A leaf module: it imports NumPy and ``fastxent._checks`` only.
"""

import math

import numpy as np

from ._checks import real_array

__all__ = ["REDUCTION_CODES", "Reduction", "Weighting", "weights_array"]


class Reduction:
    """Types of loss reduction (``tf.compat.v1.losses.Reduction``).

    Plain strings; a string is accepted wherever a Reduction is, and so are the
    lowercase names without ``weighted_`` (``"mean"``, ``"sum"``, Keras's
    ``"sum_over_batch_size"``; PyTorch's ``"mean"``, ``"sum"`` and ``"none"`` mean the same).
    """

    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key):
        """The reduction ``key`` names (a Reduction, or a short name), else ValueError."""
        if isinstance(key, str):
            key = _REDUCTION_NAMES.get(key, key)
        if not isinstance(key, str) or key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key!r}; expected one of {cls.all()} "
                             f"or {tuple(_REDUCTION_NAMES)}")
        return key


_REDUCTION_NAMES = {"mean": Reduction.MEAN, "sum": Reduction.SUM,
                    "sum_over_batch_size": Reduction.SUM_OVER_BATCH_SIZE,
                    "sum_by_nonzero_weights": Reduction.SUM_BY_NONZERO_WEIGHTS,
                    "sum_over_nonzero_weights": Reduction.SUM_BY_NONZERO_WEIGHTS}


# fast_sparse's codes, every name of a reduction included: -1 is nn's per-row loss
REDUCTION_CODES = {Reduction.NONE: 0, Reduction.SUM: 1, Reduction.MEAN: 2,
                   Reduction.SUM_OVER_BATCH_SIZE: 3, Reduction.SUM_BY_NONZERO_WEIGHTS: 4}
REDUCTION_CODES.update({name: REDUCTION_CODES[key] for name, key in _REDUCTION_NAMES.items()})


def weights_array(weights, losses_shape, xp):
    """``weights`` checked against the losses' shape (TensorFlow's broadcast rule), float64."""
    if weights is None:
        raise ValueError("weights must be given (a scalar or an array), got None")
    w = real_array(xp.asarray(weights), "weights")
    losses_shape = tuple(losses_shape)
    if w.ndim != 0 and (w.ndim != len(losses_shape)
                        or any(d not in (1, n) for d, n in zip(w.shape, losses_shape))):
        raise ValueError(f"weights can not be broadcast to values. values.shape={losses_shape}, "
                         f"weights.shape={w.shape}")
    return w.astype(np.float64)


class Weighting:
    """Weights broadcast to the losses' shape, and the reduction's denominator.

    ``mass`` (the losses' shape, float64), when given, multiplies the weights in what
    ``MEAN`` sums, and ``keep`` marks the losses that count at all (PyTorch's options:
    ``a * u[t]`` and the rows not ignored). ``denominator`` and ``zero`` are 0-d arrays of
    ``xp``.
    """

    def __init__(self, weights, losses_shape, reduction, xp=np, mass=None, keep=None):
        self.xp = xp
        self.reduction = Reduction.validate(reduction)
        losses_shape = tuple(losses_shape)
        self.weights = weights_array(weights, losses_shape, xp)
        self.broadcast = xp.broadcast_to(self.weights, losses_shape)
        counted = self.broadcast if keep is None else xp.where(keep, self.broadcast, 0.0)
        if self.reduction in (Reduction.NONE, Reduction.SUM):
            denominator = 1.0
        elif self.reduction == Reduction.MEAN:
            denominator = xp.sum(counted if mass is None else self.broadcast * mass,
                                 dtype=np.float64)
        elif self.reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
            denominator = xp.count_nonzero(counted)
        elif keep is not None:
            denominator = xp.count_nonzero(keep)
        else:
            denominator = float(math.prod(losses_shape))
        self.denominator = xp.asarray(denominator).astype(np.float64)
        self.zero = self.denominator == 0

    @property
    def result_shape(self):
        return self.broadcast.shape if self.reduction == Reduction.NONE else ()

    def _divided(self, value):
        xp = self.xp
        return xp.where(self.zero, 0.0, value / xp.where(self.zero, 1.0, self.denominator))

    def factor(self):
        """The gradient factor ``w_i / denominator`` of every loss (0 for a zero
        denominator), the losses' shape."""
        return self._divided(self.broadcast)

    def row_scale(self):
        """The gradient factor ``w_i / denominator``, per row, or one value for all."""
        if self.weights.ndim == 0:
            return self._divided(self.weights).reshape(1)
        return self.xp.ascontiguousarray(self.factor()).reshape(-1)

    def reduce(self, losses, dtype, out=None):
        """The reduced value of ``losses`` (summed in float64), as ``dtype``, into ``out``.

        A scalar result is a NumPy scalar for NumPy inputs, a 0-d array on the GPU (it stays
        on the device) and a 0-d Dask array for Dask inputs.
        """
        xp = self.xp
        if self.reduction == Reduction.NONE:
            if out is None:
                return (losses * self.broadcast).astype(dtype)
            xp.multiply(losses, self.broadcast, out=out, casting="same_kind")
            return out
        with np.errstate(invalid="ignore"):   # inf * 0 where a zero denominator ignores it
            value = self._divided(xp.sum(losses * self.broadcast, dtype=np.float64))
        if out is not None:
            out[()] = value
            return out
        result = xp.asarray(value).astype(dtype)
        return result[()] if xp is np else result
