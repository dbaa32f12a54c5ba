"""Which frontend takes a call: the core for arrays of a backend, ``fastxent._dask`` for
Dask arrays. Both have the same ``sparse``, ``dense`` and ``weighted`` functions, so the
public functions are adapters that know neither."""

from . import _core
from ._checks import refuse_unsupported
from ._backend import is_lazy


def frontend_for(**arrays):
    """``fastxent._dask`` if any ``name=array`` argument is a Dask array, else
    ``fastxent._core``. Masked arrays, torch tensors, JAX arrays and pandas objects are refused
    (``refuse_unsupported``)."""
    refuse_unsupported(**arrays)
    if is_lazy(*arrays.values()):
        from . import _dask

        return _dask
    return _core
