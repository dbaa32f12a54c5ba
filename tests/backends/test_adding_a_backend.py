"""docs/ADDING_A_BACKEND.md, followed: one module (tests/fxtoy_backend.py) and one registry
line make a new array type work with every public function, and with Dask arrays whose
chunks are of that type, through the same core and executors."""

import numpy as np
import pytest

import fxtoy
import fxtoy_backend
import reference
from fastxent import _backends as _backend, losses, nn


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(_backend.REGISTRY, "fxtoy", "fxtoy_backend")  # the one line
    fxtoy_backend.calls.clear()
    return fxtoy_backend.calls


def test_the_module_meets_the_protocol():
    assert isinstance(fxtoy_backend, _backend.Backend)


def test_the_registry_routes_the_new_type(registered, rng):
    x = fxtoy.asarray((rng.standard_normal((20, 7)) * 3).astype(np.float32))
    t = fxtoy.asarray(rng.integers(0, 7, 20))
    assert _backend.backend_for(logits=x, labels=t) is fxtoy_backend
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x,
                                                             return_grad=True)
    mean = losses.softmax_cross_entropy(fxtoy.asarray(np.eye(7)[np.asarray(t)]), x,
                                        reduction=losses.Reduction.MEAN)
    assert registered == ["first_invalid_label", "sparse_rows", "dense_rows"]
    want_loss, want_grad = reference.sparse(np.asarray(t), np.asarray(x))
    reference.assert_loss_close(loss, want_loss, np.float32)
    reference.assert_grad_close(grad, want_grad, np.float32)
    reference.assert_loss_close(mean, want_loss.mean(), np.float32)


def test_mixing_it_with_numpy_names_the_arguments(registered):
    with pytest.raises(TypeError, match="labels on fxtoy, logits on the CPU"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=fxtoy.asarray([0, 1]),
                                                    logits=np.zeros((2, 3)))


@pytest.mark.parametrize("class_chunks", [(7,), (3, 4)])
def test_dask_chunks_of_the_new_type_run_on_it(registered, rng, class_chunks):
    da = pytest.importorskip("dask.array")
    x = (rng.standard_normal((20, 7)) * 3).astype(np.float32)
    t = rng.integers(0, 7, 20)
    lazy_x = da.from_array(fxtoy.asarray(x), chunks=((8, 12), class_chunks), asarray=False)
    lazy_t = da.from_array(fxtoy.asarray(t), chunks=((8, 12),), asarray=False)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=lazy_t, logits=lazy_x,
                                                             return_grad=True)
    loss, grad = da.compute(loss, grad, scheduler="sync")
    want_loss, want_grad = reference.sparse(t, x)
    reference.assert_loss_close(loss, want_loss, np.float32)
    reference.assert_grad_close(grad, want_grad, np.float32)
    used = set(registered)
    assert used == ({"first_invalid_label", "sparse_rows"} if len(class_chunks) == 1 else
                    {"first_invalid_label", "row_partials", "sparse_grad_given"})
