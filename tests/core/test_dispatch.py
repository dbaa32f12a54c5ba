"""The registry: the backend follows the array type, Dask arrays run lazily, and mixing
devices is refused."""

import subprocess
import sys

import numpy as np
import pytest

from fastxent import _backends as _backend, losses, nn
from fastxent._backends import cpu as _cpu
from fastxent._core import plan as _core


class FakeCupyArray:
    """Stands in for a cupy.ndarray (dispatch looks at the type's module only)."""

    __module__ = "cupy._core.core"
    shape, ndim = (2,), 1


class FakeDaskArray:
    __module__ = "dask.array.core"
    shape, ndim = (2, 3), 2


def test_numpy_lists_and_scalars_go_to_the_cpu():
    assert _backend.backend_for(logits=np.zeros((2, 3)), labels=[0, 1], weights=1.0) is _cpu


def test_cupy_arrays_go_to_the_cuda_backend():
    from fastxent._backends import cuda as _cuda

    assert _backend.backend_for(logits=FakeCupyArray(), labels=[0, 1]) is _cuda


@pytest.mark.parametrize("call", [
    lambda gpu, cpu: nn.sparse_softmax_cross_entropy_with_logits(labels=gpu, logits=cpu),
    lambda gpu, cpu: nn.softmax_cross_entropy_with_logits(labels=gpu, logits=cpu),
    lambda gpu, cpu: losses.sparse_softmax_cross_entropy(gpu, cpu),
])
def test_mixing_numpy_and_cupy_names_the_arguments(call):
    with pytest.raises(TypeError, match=r"labels on the GPU \(CuPy\), logits on the CPU \(NumPy\)"):
        call(FakeCupyArray(), np.zeros((2, 3)))


def test_weights_on_another_device_are_named():
    with pytest.raises(TypeError, match=r"weights on the GPU .* labels, logits on the CPU"):
        losses.sparse_softmax_cross_entropy(np.zeros(2, int), np.zeros((2, 3)),
                                            weights=FakeCupyArray())


def test_dask_arrays_make_the_call_lazy():
    da = pytest.importorskip("dask.array")

    assert _core._namespace(logits=FakeDaskArray(), labels=np.zeros(2, int)) == (da, None)
    assert _core._namespace(labels=np.zeros(2, int), logits=[1.0]) == (np, _cpu)


def test_numpy_use_never_imports_cupy(tmp_path):
    code = ("import sys, numpy as np, fastxent\n"
            "fastxent.nn.sparse_softmax_cross_entropy_with_logits(labels=[0], logits=np.zeros((1, 2)))\n"
            "fastxent.losses.softmax_cross_entropy(np.eye(2), np.zeros((2, 2)))\n"
            "assert not {'cupy', 'dask', 'fastxent._backends.cuda', 'fastxent._dask.loss'} & set(sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
