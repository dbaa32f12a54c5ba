from contextlib import AbstractContextManager
from typing import Any, Literal, overload

import numpy as np

from ._core.typing import ArrayLike, FloatArray

__all__ = ["LinearObjective", "linear_cross_entropy", "linear_cross_entropy_hessp"]

@overload
def linear_cross_entropy(
    X: Any, coef: ArrayLike, labels: ArrayLike, *, intercept: ArrayLike | None = ...,
    sample_weight: ArrayLike | None = ..., label_smoothing: float = ...,
    class_weight: ArrayLike | None = ..., ignore_index: int | None = ..., l2_reg: float = ...,
    reduction: str = ..., return_grad: Literal[True] = ..., return_grad_X: Literal[False] = ...,
    chunk_rows: int | None = ..., n_threads: int | None = ...,
) -> tuple[float, FloatArray, FloatArray | None]: ...
@overload
def linear_cross_entropy(
    X: Any, coef: ArrayLike, labels: ArrayLike, *, intercept: ArrayLike | None = ...,
    sample_weight: ArrayLike | None = ..., label_smoothing: float = ...,
    class_weight: ArrayLike | None = ..., ignore_index: int | None = ..., l2_reg: float = ...,
    reduction: str = ..., return_grad: Literal[False], return_grad_X: Literal[False] = ...,
    chunk_rows: int | None = ..., n_threads: int | None = ...,
) -> float: ...
@overload
def linear_cross_entropy(
    X: Any, coef: ArrayLike, labels: ArrayLike, *, intercept: ArrayLike | None = ...,
    sample_weight: ArrayLike | None = ..., label_smoothing: float = ...,
    class_weight: ArrayLike | None = ..., ignore_index: int | None = ..., l2_reg: float = ...,
    reduction: str = ..., return_grad: Literal[True] = ..., return_grad_X: Literal[True],
    chunk_rows: int | None = ..., n_threads: int | None = ...,
) -> tuple[float, FloatArray, FloatArray | None, FloatArray]: ...
@overload
def linear_cross_entropy(
    X: Any, coef: ArrayLike, labels: ArrayLike, *, intercept: ArrayLike | None = ...,
    sample_weight: ArrayLike | None = ..., label_smoothing: float = ...,
    class_weight: ArrayLike | None = ..., ignore_index: int | None = ..., l2_reg: float = ...,
    reduction: str = ..., return_grad: Literal[False], return_grad_X: Literal[True],
    chunk_rows: int | None = ..., n_threads: int | None = ...,
) -> tuple[float, FloatArray]: ...
@overload
def linear_cross_entropy(
    X: Any, coef: ArrayLike, labels: ArrayLike, *, intercept: ArrayLike | None = ...,
    sample_weight: ArrayLike | None = ..., label_smoothing: float = ...,
    class_weight: ArrayLike | None = ..., ignore_index: int | None = ..., l2_reg: float = ...,
    reduction: str = ..., return_grad: bool = ..., return_grad_X: bool = ...,
    chunk_rows: int | None = ..., n_threads: int | None = ...,
) -> float | tuple[Any, ...]: ...

def fused_linear(
    labels: ArrayLike, features: ArrayLike, weights: ArrayLike, *, return_grad: bool,
    chunk_rows: int | None, n_threads: int | None,
) -> FloatArray | tuple[FloatArray, FloatArray, FloatArray]: ...

def linear_cross_entropy_hessp(
    X: Any, coef: ArrayLike, labels: ArrayLike, v_coef: ArrayLike,
    v_intercept: ArrayLike | None = ..., *, intercept: ArrayLike | None = ...,
    sample_weight: ArrayLike | None = ..., label_smoothing: float = ...,
    class_weight: ArrayLike | None = ..., ignore_index: int | None = ..., l2_reg: float = ...,
    reduction: str = ..., chunk_rows: int | None = ..., n_threads: int | None = ...,
) -> tuple[FloatArray, FloatArray | None]: ...

class LinearObjective:
    l2_reg: float
    dtype: np.dtype[Any]
    n_features: int
    n_classes: int
    fit_intercept: bool
    size: int
    def __init__(
        self, X: Any, labels: ArrayLike, n_classes: int, *, fit_intercept: bool = ...,
        **options: Any,
    ) -> None: ...
    def threads_held(self) -> AbstractContextManager[Any]: ...
    def unpack(self, w: ArrayLike) -> tuple[FloatArray, FloatArray | None]: ...
    def pack(self, coef: ArrayLike, intercept: ArrayLike | None = ...) -> FloatArray: ...
    def __call__(self, w: ArrayLike) -> tuple[float, FloatArray]: ...
    def hessp(self, w: ArrayLike, v: ArrayLike) -> FloatArray: ...
