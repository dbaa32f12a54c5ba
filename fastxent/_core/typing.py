"""The types that the package's stubs (``*.pyi``) share."""

from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ArrayLike", "Float", "FloatArray", "Loss"]

Float = np.floating[Any]
"""A NumPy float scalar (a reduced loss)."""
FloatArray = NDArray[np.floating[Any]]
"""A float ndarray (per-row losses, gradients)."""
Loss = Union[FloatArray, Float]
"""A loss: an array of per-row losses, or a scalar where a reduction applies."""
