"""The CUDA backend: fastxent's own kernels (``fastxent/cuda/fastxent_kernels.cu``) run
through CuPy, on the arrays' device and the current stream. No host round trip.

Imported only when a call gets CuPy arrays (``fastxent._dispatch``); CuPy is an
optional dependency (``pip install fastxent[cuda]``). Same interface as
``fastxent._cpu``, plus ``xp`` (the array namespace).
"""

import functools
import pathlib

import numpy as np

SOURCE = pathlib.Path(__file__).resolve().parent / "cuda" / "fastxent_kernels.cu"

# Storage type in the kernels for each dtype (float16 travels as raw bits).
CUDA_TYPES = {np.dtype(np.float16): "unsigned short", np.dtype(np.float32): "float",
              np.dtype(np.float64): "double"}
BLOCK = 256            # threads per block
WARP_ROW_MAX = 2048    # rows up to this many classes get a warp each; longer rows a block
TPRS = (32, BLOCK)
NAME_EXPRESSIONS = tuple(
    f"fx_{kind}<{ctype}, {tpr}>"
    for kind in ("sparse_rows", "dense_rows", "row_partials", "sparse_grad_given",
                 "dense_sums_given", "dense_grad_given")
    for ctype in CUDA_TYPES.values() for tpr in TPRS
) + ("fx_first_invalid_label",)
COMPILE_OPTIONS = ("-std=c++14",)


def _cupy():
    import cupy

    return cupy


@functools.lru_cache(maxsize=None)
def _module(device_id):
    cupy = _cupy()
    return cupy.RawModule(code=SOURCE.read_text(), options=COMPILE_OPTIONS,
                          name_expressions=NAME_EXPRESSIONS)


def _kernel(name):
    cupy = _cupy()
    return _module(cupy.cuda.Device().id).get_function(name)


class _Namespace:
    """The array namespace of this backend (CuPy), looked up on first use."""

    def __getattr__(self, name):
        return getattr(_cupy(), name)


xp = _Namespace()

# Invalid labels give NaN rows on the GPU, as in TensorFlow, unless validate=True.
checks_labels = False


def _launch_shape(rows, cols):
    tpr = 32 if cols <= WARP_ROW_MAX else BLOCK
    rows_per_block = BLOCK // tpr
    blocks = max(1, min(-(-rows // rows_per_block), 65535 * 8))
    return tpr, (blocks,), (BLOCK,)


def _element_stride(array, axis):
    stride, item = array.strides[axis], array.itemsize
    if stride % item:
        raise ValueError("CUDA kernels need element-aligned strides")
    return np.int64(stride // item)


def _rows_contiguous(array):
    """``array`` (N, C) with contiguous rows: itself, or a copy."""
    if array.shape[1] <= 1 or array.strides[1] == array.itemsize:
        return array
    return _cupy().ascontiguousarray(array)


class _Output:
    """A writable (N, C) or (N,) result the kernels write as ``dtype`` (the logits' type):
    the array itself, or a temporary copied (and cast) back."""

    def __init__(self, array, dtype):
        self.array = array
        rows_ok = array.ndim == 1 or array.shape[1] <= 1 or array.strides[1] == array.itemsize
        ok = rows_ok and array.dtype == dtype and array.strides[0] % array.itemsize == 0
        self.target = array if ok else _cupy().empty(array.shape, dtype)

    def finish(self):
        if self.target is not self.array:
            self.array[...] = self.target


def _pointer_or_null(output):
    return output.target if output is not None else np.uint64(0)


def sparse_rows(logits, labels, loss, grad, scale, n_threads=None):
    """As ``fastxent._cpu.sparse_rows``; ``n_threads`` is ignored on the GPU."""
    cupy = _cupy()
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    out = _Output(loss, x.dtype)
    g = _Output(grad, x.dtype) if grad is not None else None
    if g is not None and g.target is not grad and grad is logits:
        g.target = x  # in place over the contiguous copy, then copied back
    scale = cupy.asarray(scale, dtype=cupy.float64)
    tpr, grid, block = _launch_shape(rows, cols)
    kernel = _kernel(f"fx_sparse_rows<{CUDA_TYPES[x.dtype]}, {tpr}>")
    kernel(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0),
        cupy.ascontiguousarray(labels, dtype=cupy.int64), scale,
        np.int64(0 if scale.size == 1 else 1),
        out.target, _element_stride(out.target, 0),
        _pointer_or_null(g), _element_stride(g.target, 0) if g is not None else np.int64(0)))
    out.finish()
    if g is not None:
        g.finish()


def dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale, n_threads=None):
    """As ``fastxent._cpu.dense_rows``; ``n_threads`` is ignored on the GPU."""
    cupy = _cupy()
    rows, cols = logits.shape
    if rows == 0 or cols == 0:
        return
    x = _rows_contiguous(logits)
    # the kernels read labels in the logits' storage type (float16 labels for float16 logits)
    y = labels if labels.dtype == x.dtype else labels.astype(x.dtype)
    y = _rows_contiguous(y)
    out = _Output(loss, x.dtype)
    g = _Output(grad, x.dtype) if grad is not None else None
    gy = _Output(labels_grad, x.dtype) if labels_grad is not None else None
    if g is not None and g.target is not grad and grad is logits:
        g.target = x
    scale = cupy.asarray(scale, dtype=cupy.float64)
    tpr, grid, block = _launch_shape(rows, cols)
    kernel = _kernel(f"fx_dense_rows<{CUDA_TYPES[x.dtype]}, {tpr}>")
    kernel(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0),
        y, _element_stride(y, 0), np.float64(a), np.float64(b),
        scale, np.int64(0 if scale.size == 1 else 1),
        out.target, _element_stride(out.target, 0),
        _pointer_or_null(g), _element_stride(g.target, 0) if g is not None else np.int64(0),
        _pointer_or_null(gy), _element_stride(gy.target, 0) if gy is not None else np.int64(0)))
    for result in (out, g, gy):
        if result is not None:
            result.finish()


# --- a class axis split across blocks (the Dask backend) ------------------------------------

def _per_row(values):
    return _cupy().ascontiguousarray(values, dtype=_cupy().float64)


def row_partials(logits, m_out, r_out):
    """As ``fastxent._kernels.row_partials``: partial normalizers of a block of classes."""
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_row_partials<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), m_out, r_out))


def sparse_grad_given(logits, m, r, xt, local_labels, scale, grad):
    """As ``fastxent._kernels.sparse_grad_given``."""
    cupy = _cupy()
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    g = _Output(grad, x.dtype)
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_sparse_grad_given<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), _per_row(m), _per_row(r),
        _per_row(xt), cupy.ascontiguousarray(local_labels, dtype=cupy.int64), _per_row(scale),
        g.target, _element_stride(g.target, 0)))
    g.finish()


def dense_sums_given(logits, labels, m, a, b, sum_y, sum_yx):
    """As ``fastxent._kernels.dense_sums_given``."""
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    y = _rows_contiguous(labels if labels.dtype == x.dtype else labels.astype(x.dtype))
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_dense_sums_given<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), y, _element_stride(y, 0),
        _per_row(m), np.float64(a), np.float64(b), sum_y, sum_yx))


def dense_grad_given(logits, labels, m, a, b, p_scale, y_scale, grad):
    """As ``fastxent._kernels.dense_grad_given``."""
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    y = _rows_contiguous(labels if labels.dtype == x.dtype else labels.astype(x.dtype))
    g = _Output(grad, x.dtype)
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_dense_grad_given<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), y, _element_stride(y, 0),
        _per_row(m), np.float64(a), np.float64(b), _per_row(p_scale), _per_row(y_scale),
        g.target, _element_stride(g.target, 0)))
    g.finish()


def first_invalid_label(labels, num_classes):
    """Index of the first label outside ``[0, num_classes)``, or -1 (a device-side check)."""
    cupy = _cupy()
    rows = labels.size
    first = cupy.full((), rows, dtype=cupy.uint64)
    blocks = max(1, min(-(-rows // BLOCK), 4096))
    _kernel("fx_first_invalid_label")((blocks,), (BLOCK,), (
        cupy.ascontiguousarray(labels, dtype=cupy.int64), np.int64(rows),
        np.int64(num_classes), first))
    value = int(first.get())
    return -1 if value >= rows else value


def info():
    cupy = _cupy()
    device = cupy.cuda.Device()
    return {"path": "cuda", "device": device.id,
            "name": cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode()}
