"""Choose the backend for the arguments of a call: the one module that knows the backends.

- NumPy arrays, and anything NumPy converts (lists, scalars): the CPU kernels
  (``fastxent._cpu``).
- CuPy arrays: the CUDA kernels (``fastxent._cuda``), imported only then, so
  that NumPy users never import CuPy.
- Dask arrays: ``fastxent._dask`` (lazy: it maps the functions over the blocks,
  whose chunk type then picks the CPU or CUDA kernels); NumPy arguments beside
  a Dask array are wrapped as Dask arrays.

A backend module provides ``xp`` (its array namespace), ``sparse_rows``,
``dense_rows``, ``first_invalid_label``, ``info`` and ``checks_labels`` (whether
labels are range-checked by default: on the CPU yes, on the GPU only when
asked, as in TensorFlow).
"""

def _library(array):
    return type(array).__module__.partition(".")[0]


def backend_for(**arrays):
    """Return the backend module for keyword ``name=array`` arguments.

    Raises
    ------
    TypeError
        If an argument is an array type no backend handles, or if the arguments
        mix NumPy and CuPy arrays; the message names the arguments.
    """
    on_gpu, on_cpu, lazy = [], [], False
    for name, array in arrays.items():
        library = _library(array)
        if library == "dask":
            lazy = True
        elif library == "cupy":
            on_gpu.append(name)
        elif library == "numpy" and hasattr(array, "shape") and getattr(array, "ndim", 0) > 0:
            on_cpu.append(name)
    if lazy:
        from . import _dask

        return _dask
    if on_gpu and on_cpu:
        raise TypeError(
            f"arguments mix devices: {', '.join(on_gpu)} on the GPU (CuPy), "
            f"{', '.join(on_cpu)} on the CPU (NumPy); move them to one device "
            "(cupy.asarray or cupy.asnumpy)")
    if on_gpu:
        from . import _cuda

        return _cuda
    from . import _cpu

    return _cpu
