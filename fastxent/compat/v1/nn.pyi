from typing import Literal, overload

from ...nn import sparse_softmax_cross_entropy_with_logits as sparse_softmax_cross_entropy_with_logits
from ..._core.typing import ArrayLike, FloatArray

__all__ = ["softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits"]

@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, dim: int = ..., name: str | None = ...,
    axis: int | None = ..., return_grad: Literal[False] = ..., out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ...,
) -> FloatArray: ...
@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, dim: int = ..., name: str | None = ...,
    axis: int | None = ..., return_grad: Literal[True], out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ...,
) -> tuple[FloatArray, FloatArray]: ...
@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, dim: int = ..., name: str | None = ...,
    axis: int | None = ..., return_grad: bool, out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ...,
) -> FloatArray | tuple[FloatArray, FloatArray]: ...
