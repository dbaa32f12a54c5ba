"""The BLAS of the linear pass: SciPy's ``cython_blas``, bound at first use, and its threads.

fastxent builds without SciPy; where SciPy is missing, ``fastxent.linear`` keeps its NumPy
loop (one block at a time through ``numpy.matmul``) and these report that.
"""

import contextlib
import threading

_state: dict[str, object] = {}


def bound():
    """True when the compiled linear pass has its GEMMs."""
    if "bound" not in _state:
        try:
            from scipy.linalg import cython_blas
        except ImportError:
            _state["bound"] = False
        else:
            from .._backends._kernels import use_blas

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
    """True when BLAS's own thread pool can be held: threadpoolctl sees it, and this is
    the main thread. The pool is process-wide: a limit set from a worker thread (a Dask
    task, say) would race with the other threads, and threadpoolctl then lets that thread
    alone control OpenBLAS for as long as it lives."""
    return _controller() is not None and threading.current_thread() is threading.main_thread()


_SMALL_WORK = 1 << 21     # n * d * c below this: one thread unless BLAS is held (~0.2 ms)


def pass_threads(n_threads, n_slots, work, holding=False):
    """(threads over the runs, threads over a block's rows, BLAS's threads or None to leave
    BLAS as it is) of one compiled linear pass of ``n_slots`` runs and ``work`` = n * d * c;
    ``holding``: for a ``threads`` block around many passes."""
    from .._backends._kernels import default_threads

    wanted = n_threads or default_threads()
    if wanted == 1 and n_slots > 1 or not can_limit() \
            or (work < _SMALL_WORK and not holding and held() != 1):
        # Small calls keep off BLAS's settings: setting its count back up after each
        # call wakes its pool, which then spins against the next call's threads.
        return 1, 1, None
    if n_slots == 1:
        return 1, wanted, wanted         # the coefficients are large: BLAS's threads
    return min(wanted, n_slots), 1, 1


@contextlib.contextmanager
def threads(count):
    """BLAS's threads set to ``count`` for the block, and set back after it (None: left as
    they are).

    A library already at ``count`` is left alone: setting OpenBLAS's count back up wakes
    its pool, whose threads then spin against the kernel's threads for a while, so a loop
    of calls (an optimizer's) should hold the count around the whole loop
    (``LinearObjective.threads_held``) rather than have each call set and reset it.
    """
    if count is None:
        yield
        return
    controller = _controller() if can_limit() else None
    changed = []
    _state.setdefault("held", []).append(count)
    try:
        for library in (controller.lib_controllers if controller is not None else ()):
            before = library.get_num_threads()
            if before != count:
                library.set_num_threads(count)
                changed.append((library, before))
        yield
    finally:
        _state["held"].pop()
        for library, before in reversed(changed):
            library.set_num_threads(before)


def held():
    """The count an enclosing ``threads`` block holds BLAS at, or None."""
    stack = _state.get("held")
    return stack[-1] if stack else None
