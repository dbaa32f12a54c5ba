"""Which frontend takes a call: the core for arrays of a backend, ``fastxent._dask`` for
Dask arrays. Both have the same ``sparse``, ``dense`` and ``weighted`` functions, so the
public functions are adapters that know neither."""

from . import _core
from ._backend import is_lazy


def frontend_for(*arrays):
    """``fastxent._dask`` if any argument is a Dask array, else ``fastxent._core``."""
    if is_lazy(*arrays):
        from . import _dask

        return _dask
    return _core
