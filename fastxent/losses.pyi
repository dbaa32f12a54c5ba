from typing import Literal, overload

from ._core.checks import Reduction as Reduction
from ._core.typing import ArrayLike, FloatArray, Loss

__all__ = [
    "Reduction",
    "compute_weighted_loss",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
]

@overload
def softmax_cross_entropy(
    onehot_labels: ArrayLike, logits: ArrayLike, weights: ArrayLike = ...,
    label_smoothing: float = ..., scope: str | None = ..., loss_collection: object = ...,
    reduction: str = ..., *, return_grad: Literal[False] = ..., out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ...,
    class_weight: ArrayLike | None = ...,
) -> Loss: ...
@overload
def softmax_cross_entropy(
    onehot_labels: ArrayLike, logits: ArrayLike, weights: ArrayLike = ...,
    label_smoothing: float = ..., scope: str | None = ..., loss_collection: object = ...,
    reduction: str = ..., *, return_grad: Literal[True], out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ...,
    class_weight: ArrayLike | None = ...,
) -> tuple[Loss, FloatArray]: ...
@overload
def softmax_cross_entropy(
    onehot_labels: ArrayLike, logits: ArrayLike, weights: ArrayLike = ...,
    label_smoothing: float = ..., scope: str | None = ..., loss_collection: object = ...,
    reduction: str = ..., *, return_grad: bool, out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ...,
    class_weight: ArrayLike | None = ...,
) -> Loss | tuple[Loss, FloatArray]: ...

@overload
def sparse_softmax_cross_entropy(
    labels: ArrayLike, logits: ArrayLike, weights: ArrayLike = ..., scope: str | None = ...,
    loss_collection: object = ..., reduction: str = ..., *,
    return_grad: Literal[False] = ..., out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., validate: bool | None = ...,
    ignore_index: int | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ...,
) -> Loss: ...
@overload
def sparse_softmax_cross_entropy(
    labels: ArrayLike, logits: ArrayLike, weights: ArrayLike = ..., scope: str | None = ...,
    loss_collection: object = ..., reduction: str = ..., *,
    return_grad: Literal[True], out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., validate: bool | None = ...,
    ignore_index: int | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ...,
) -> tuple[Loss, FloatArray]: ...
@overload
def sparse_softmax_cross_entropy(
    labels: ArrayLike, logits: ArrayLike, weights: ArrayLike = ..., scope: str | None = ...,
    loss_collection: object = ..., reduction: str = ..., *,
    return_grad: bool, out: FloatArray | None = ...,
    grad_out: FloatArray | None = ..., n_threads: int | None = ..., validate: bool | None = ...,
    ignore_index: int | None = ..., class_weight: ArrayLike | None = ...,
    label_smoothing: float = ...,
) -> Loss | tuple[Loss, FloatArray]: ...

@overload
def compute_weighted_loss(
    losses: ArrayLike, weights: ArrayLike = ..., scope: str | None = ...,
    loss_collection: object = ..., reduction: str = ..., *, return_grad: Literal[False] = ...,
    out: FloatArray | None = ..., grad_out: FloatArray | None = ..., n_threads: int | None = ...,
) -> Loss: ...
@overload
def compute_weighted_loss(
    losses: ArrayLike, weights: ArrayLike = ..., scope: str | None = ...,
    loss_collection: object = ..., reduction: str = ..., *, return_grad: Literal[True],
    out: FloatArray | None = ..., grad_out: FloatArray | None = ..., n_threads: int | None = ...,
) -> tuple[Loss, FloatArray]: ...
@overload
def compute_weighted_loss(
    losses: ArrayLike, weights: ArrayLike = ..., scope: str | None = ...,
    loss_collection: object = ..., reduction: str = ..., *, return_grad: bool,
    out: FloatArray | None = ..., grad_out: FloatArray | None = ..., n_threads: int | None = ...,
) -> Loss | tuple[Loss, FloatArray]: ...
