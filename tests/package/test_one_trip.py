"""One trip down: a public call goes through the package's layers in order, each module
visited once or nearly, instead of back and forth between them.

The trace records the module of every Python-level call inside fastxent during one call
(a ``sys.setprofile`` hook), consecutive calls in one module counted once; a "return" is a
visit to a module already left. The call is made once before it is traced, so that what is
loaded on first use (the kernels, SciPy's BLAS) is not counted.
"""

import sys

import numpy as np
import pytest

import fastxent
from fastxent import losses, nn


def module_visits(call):
    """The modules ``call`` visits, in order, consecutive calls in one module collapsed."""
    call()
    visits = []

    def record(frame, event, arg):
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            if module.startswith("fastxent") and (not visits or visits[-1] != module):
                visits.append(module)

    sys.setprofile(record)
    try:
        call()
    finally:
        sys.setprofile(None)
    return visits


def returns(visits):
    return sum(module in visits[:k] for k, module in enumerate(visits))


@pytest.fixture
def data(rng):
    logits = rng.standard_normal((64, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    return logits, labels, np.eye(10, dtype=np.float32)[labels], rng.random(64)


def _calls(data):
    logits, labels, onehot, weights = data
    return {
        "sparse loss, weighted and smoothed, with its gradient":
            lambda: losses.sparse_softmax_cross_entropy(
                labels, logits, weights=weights, label_smoothing=0.1, return_grad=True),
        "dense loss, weighted and smoothed, with its gradient":
            lambda: losses.softmax_cross_entropy(
                onehot, logits, weights=weights, label_smoothing=0.1, return_grad=True),
        "nn sparse, PyTorch's options":
            lambda: nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits, ignore_index=3, class_weight=np.ones(10),
                label_smoothing=0.1, return_grad=True),
        "nn dense, a mask of rows":
            lambda: nn.softmax_cross_entropy_with_logits(
                labels=onehot, logits=logits, where=weights > 0.5, return_grad=True),
    }


@pytest.mark.parametrize("name", list(_calls((None,) * 4)))
def test_a_loss_goes_down_once(data, name):
    visits = module_visits(_calls(data)[name])
    assert len(visits) <= 10 and returns(visits) <= 4, " > ".join(visits)


@pytest.mark.parametrize("labels_kind", ["sparse", "dense"])
def test_linear_cross_entropy_goes_down_once(rng, labels_kind):
    X = rng.standard_normal((300, 8))
    coef = rng.standard_normal((8, 5))
    labels = rng.integers(0, 5, 300)
    if labels_kind == "dense":
        labels = np.eye(5)[labels]
    visits = module_visits(lambda: fastxent.linear_cross_entropy(
        X, coef, labels, intercept=np.zeros(5), sample_weight=np.ones(300),
        label_smoothing=0.1, l2_reg=0.01))
    assert len(visits) <= 12 and returns(visits) <= 5, " > ".join(visits)


def test_the_trace_sees_every_layer(data):
    """The guard measures what it claims: a call reaches the backend through the core."""
    visits = module_visits(_calls(data)["sparse loss, weighted and smoothed, with its gradient"])
    assert visits[0] == "fastxent.losses"
    assert {"fastxent._core.plan", "fastxent._core.checks", "fastxent._core.rows",
            "fastxent._backends.cpu"} <= set(visits)
