"""Weights and reductions, once, for eager arrays (NumPy, CuPy) and lazy ones (Dask).

A reduction turns per-example losses ``l_i`` and weights ``w_i`` into ``sum(w_i l_i) / D``
with the denominator ``D`` of ``tf.compat.v1.losses.Reduction`` (1, ``sum(w)``, the number of
losses, the number of nonzero weights), or keeps ``w_i l_i`` (``NONE``). The gradient
factor of each example is ``w_i / D``. A zero ``D`` gives exactly 0 and a zero gradient
(TensorFlow's ``div_no_nan``). Everything here is written against an array namespace
``xp`` (``numpy``, ``cupy`` or ``dask.array``), so the denominator is a 0-d array of it:
on Dask it stays lazy until the result is computed.

The weights and the reduction come checked (``fastxent._core.checks``).
"""

import math

import numpy as np

from .checks import REDUCTION_NAMES, Reduction

__all__ = ["REDUCTION_CODES", "Weighting"]


# fast_sparse's codes, every name of a reduction included: -1 is nn's per-row loss
REDUCTION_CODES = {Reduction.NONE: 0, Reduction.SUM: 1, Reduction.MEAN: 2,
                   Reduction.SUM_OVER_BATCH_SIZE: 3, Reduction.SUM_BY_NONZERO_WEIGHTS: 4}
REDUCTION_CODES.update({name: REDUCTION_CODES[key] for name, key in REDUCTION_NAMES.items()})


class Weighting:
    """Checked weights broadcast to the losses' shape, and the denominator of a validated
    reduction (``Reduction.validate``).

    ``mass`` (the losses' shape, float64), when given, multiplies the weights in what
    ``MEAN`` sums, and ``keep`` marks the losses that count at all (PyTorch's options:
    ``a * u[t]`` and the rows not ignored). ``denominator`` and ``zero`` are 0-d arrays of
    ``xp``.
    """

    def __init__(self, weights, losses_shape, reduction, xp=np, mass=None, keep=None):
        self.xp = xp
        self.reduction = reduction
        losses_shape = tuple(losses_shape)
        self.weights = weights
        self.broadcast = xp.broadcast_to(weights, losses_shape)
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
