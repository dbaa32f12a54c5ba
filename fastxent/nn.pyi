from typing import Literal, overload

from ._core.typing import ArrayLike, FloatArray

__all__ = [
    "fused_linear_cross_entropy",
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits",
]

@overload
def sparse_softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, name: str | None = ...,
    return_grad: Literal[False] = ..., out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., validate: bool | None = ...,
    ignore_index: int | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ..., axis: int = ..., where: ArrayLike | None = ...,
) -> FloatArray: ...
@overload
def sparse_softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, name: str | None = ...,
    return_grad: Literal[True], out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., validate: bool | None = ...,
    ignore_index: int | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ..., axis: int = ..., where: ArrayLike | None = ...,
) -> tuple[FloatArray, FloatArray]: ...
@overload
def sparse_softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, name: str | None = ...,
    return_grad: bool, out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., validate: bool | None = ...,
    ignore_index: int | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ..., axis: int = ..., where: ArrayLike | None = ...,
) -> FloatArray | tuple[FloatArray, FloatArray]: ...

@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, axis: int | tuple[int, ...] = ...,
    name: str | None = ..., return_grad: Literal[False] = ...,
    return_labels_grad: Literal[False] = ..., out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., where: ArrayLike | None = ...,
    class_weight: ArrayLike | None = ..., label_smoothing: float = ...,
) -> FloatArray: ...
@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, axis: int | tuple[int, ...] = ...,
    name: str | None = ..., return_grad: Literal[True],
    return_labels_grad: Literal[False] = ..., out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., where: ArrayLike | None = ...,
    class_weight: ArrayLike | None = ..., label_smoothing: float = ...,
) -> tuple[FloatArray, FloatArray]: ...
@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, axis: int | tuple[int, ...] = ...,
    name: str | None = ..., return_grad: Literal[False] = ...,
    return_labels_grad: Literal[True], out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., where: ArrayLike | None = ...,
    class_weight: ArrayLike | None = ..., label_smoothing: float = ...,
) -> tuple[FloatArray, FloatArray]: ...
@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, axis: int | tuple[int, ...] = ...,
    name: str | None = ..., return_grad: Literal[True],
    return_labels_grad: Literal[True], out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., where: ArrayLike | None = ...,
    class_weight: ArrayLike | None = ..., label_smoothing: float = ...,
) -> tuple[FloatArray, FloatArray, FloatArray]: ...
@overload
def softmax_cross_entropy_with_logits(
    *, labels: ArrayLike, logits: ArrayLike, axis: int | tuple[int, ...] = ...,
    name: str | None = ..., return_grad: bool = ..., return_labels_grad: bool = ...,
    out: FloatArray | None = ..., grad_out: FloatArray | None = ..., n_threads: int | None = ...,
    where: ArrayLike | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ...,
) -> FloatArray | tuple[FloatArray, FloatArray] | tuple[FloatArray, FloatArray, FloatArray]: ...

softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits

def dense(
    labels: ArrayLike, logits: ArrayLike, axis: int | tuple[int, ...], *, return_grad: bool,
    return_labels_grad: bool, out: FloatArray | None, grad_out: FloatArray | None,
    n_threads: int | None, where: ArrayLike | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ...,
) -> FloatArray | tuple[FloatArray, ...]: ...

@overload
def fused_linear_cross_entropy(
    *, labels: ArrayLike, features: ArrayLike, weights: ArrayLike,
    name: str | None = ..., return_grad: Literal[False] = ..., chunk_rows: int | None = ...,
    n_threads: int | None = ...,
) -> FloatArray: ...
@overload
def fused_linear_cross_entropy(
    *, labels: ArrayLike, features: ArrayLike, weights: ArrayLike,
    name: str | None = ..., return_grad: Literal[True], chunk_rows: int | None = ...,
    n_threads: int | None = ...,
) -> tuple[FloatArray, FloatArray, FloatArray]: ...
@overload
def fused_linear_cross_entropy(
    *, labels: ArrayLike, features: ArrayLike, weights: ArrayLike,
    name: str | None = ..., return_grad: bool, chunk_rows: int | None = ...,
    n_threads: int | None = ...,
) -> FloatArray | tuple[FloatArray, FloatArray, FloatArray]: ...
