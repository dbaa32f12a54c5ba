"""Choose the backend for the arguments of a call: the one module that knows the backends.

Today there is one backend, the CPU kernels, for NumPy arrays and anything
NumPy converts (lists, scalars, arrays exposing ``__array__``). GPU arrays and
lazy Dask arrays are refused with a TypeError rather than silently copied to
the host or computed eagerly.
"""

_NOT_YET = {
    "cupy": "CuPy arrays are not supported yet (the CUDA backend is planned)",
    "dask": "Dask arrays are not supported yet (the Dask backend is planned)",
}


def backend_for(**arrays):
    """Return the backend module for keyword ``name=array`` arguments.

    Raises
    ------
    TypeError
        If an argument is an array type no backend handles; the message names it.
    """
    for name, array in arrays.items():
        library = type(array).__module__.partition(".")[0]
        if library in _NOT_YET:
            raise TypeError(f"{name}: {_NOT_YET[library]}; got {type(array).__name__}")
    from . import _cpu

    return _cpu
