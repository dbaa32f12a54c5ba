"""The BLAS of the linear pass: SciPy's ``cython_blas``, bound at first use, and its threads.

fastxent builds without SciPy; where SciPy is missing, ``fastxent.linear`` keeps its NumPy
loop (one block at a time through ``numpy.matmul``) and these report that.
"""

import contextlib

_state = {}


def bound():
    """True when the compiled linear pass has its GEMMs."""
    if "bound" not in _state:
        try:
            from scipy.linalg import cython_blas
        except ImportError:
            _state["bound"] = False
        else:
            from ._kernels import use_blas

            capi = cython_blas.__pyx_capi__
            use_blas(capi["dgemm"], capi["sgemm"])
            _state["bound"] = True
    return _state["bound"]


def _controller():
    if "controller" not in _state:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _state["controller"] = None
        else:
            _state["controller"] = ThreadpoolController().select(user_api="blas")
    return _state["controller"]


def can_limit():
    """True when the BLAS's own thread pool can be held (threadpoolctl sees it)."""
    return _controller() is not None


@contextlib.contextmanager
def threads(count):
    """BLAS's threads set to ``count`` for the block, as threadpoolctl sets them."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=count):
        yield
