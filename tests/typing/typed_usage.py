"""A user's script, checked by mypy (tests/test_typing.py): every result has its type."""

import numpy as np
from typing_extensions import assert_type

import fastxent
from fastxent._core.typing import FloatArray, Loss

logits = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
labels = np.arange(8) % 5
onehot = np.eye(5, dtype=np.float32)[labels]

assert_type(fastxent.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
            FloatArray)
loss, dlogits = fastxent.nn.sparse_softmax_cross_entropy_with_logits(
    labels=labels, logits=logits, return_grad=True)
assert_type(loss, FloatArray)
assert_type(dlogits, FloatArray)

loss, dlogits, dlabels = fastxent.nn.softmax_cross_entropy_with_logits(
    labels=onehot, logits=logits, return_grad=True, return_labels_grad=True)
assert_type(dlabels, FloatArray)
loss, dlabels = fastxent.nn.softmax_cross_entropy_with_logits(
    labels=onehot, logits=logits, return_labels_grad=True)

mean = fastxent.losses.sparse_softmax_cross_entropy(labels, logits, reduction="mean")
assert_type(mean, Loss)
mean, dlogits = fastxent.losses.softmax_cross_entropy(onehot, logits, return_grad=True)
assert_type(dlogits, FloatArray)

X = logits.astype(np.float64)
coef = np.zeros((5, 5))
value, g_coef, g_intercept = fastxent.linear_cross_entropy(X, coef, labels)
assert_type(value, float)
assert_type(g_intercept, FloatArray | None)
assert_type(fastxent.linear_cross_entropy(X, coef, labels, return_grad=False), float)
objective = fastxent.LinearObjective(X, labels, 5)
assert_type(objective(np.zeros(objective.size)), tuple[float, FloatArray])

flag = bool(len(labels))                      # not known until run time: either shape
either = fastxent.nn.sparse_softmax_cross_entropy_with_logits(
    labels=labels, logits=logits, return_grad=flag)
assert_type(either, FloatArray | tuple[FloatArray, FloatArray])
