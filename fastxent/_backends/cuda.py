"""The CUDA backend: fastxent's own kernels (the repository's ``cuda/fastxent_kernels.cu``,
shipped in the package beside this module) run through CuPy, on the arrays' device and the
current stream. No host round trip.

Imported only when a call gets CuPy arrays (``fastxent._backends``); CuPy is an optional
dependency (``pip install fastxent[cuda]``). Same interface as ``fastxent._backends.cpu``.
"""

import functools
import os
import pathlib

import numpy as np

_HERE = pathlib.Path(__file__).resolve().parent
# In the wheel beside this module; in a source checkout, the repository's cuda/ folder.
SOURCE = next((path for path in (_HERE / "fastxent_kernels.cu",
                                 _HERE.parents[1] / "cuda" / "fastxent_kernels.cu")
               if path.exists()), _HERE / "fastxent_kernels.cu")
# The row math the kernels share with the CPU's kernels.
ROW_MATH = pathlib.Path(__file__).resolve().parent / "_src" / "fx_row_math.h"


@functools.lru_cache(maxsize=None)
def source():
    """The kernels' source with the shared row math written in where it is included: one
    text, so that CuPy's cache of compiled modules (keyed on the text) sees a change of
    either file."""
    include = '#include "fx_row_math.h"'
    text = SOURCE.read_text()
    if include not in text:
        raise RuntimeError(f"{SOURCE} does not include fx_row_math.h")
    return text.replace(include, ROW_MATH.read_text(), 1)

# Storage type in the kernels for each dtype (float16 travels as raw bits).
CUDA_TYPES = {np.dtype(np.float16): "unsigned short", np.dtype(np.float32): "float",
              np.dtype(np.float64): "double"}
# FASTXENT_CUDA_OPTIONS: extra NVRTC options, for tuning (e.g. -DFX_FIT_THREADS_PER_SM=1024)
COMPILE_OPTIONS = ("-std=c++14",) + tuple(os.environ.get("FASTXENT_CUDA_OPTIONS", "").split())
CLUSTER_OPTIONS = ("-DFX_CLUSTERS",)  # thread-block clusters: compute capability 9.0 and up

# Rows that fit in registers ("fit" kernels): a warp per row holding FIT_WARP_VECTORS
# 16-byte vectors per thread, else a block per row of FIT_BLOCK_THREADS threads, else
# (sm_90) a cluster of FIT_CLUSTERS blocks of the largest size; a thread holds at most
# FIT_ENTRIES entries of the logits (as many registers as float32 entries), half as
# many for dense labels, whose entries it holds too. Longer rows stream (the "rows"
# kernels).
FIT_WARP_VECTORS = (1, 2, 4, 8)
FIT_BLOCK_THREADS = (64, 128, 256, 512)
FIT_ENTRIES = {np.dtype(np.float16): 32, np.dtype(np.float32): 32, np.dtype(np.float64): 16}
FIT_CLUSTERS = (2, 4, 8)
WARP_BLOCK = 256       # threads per block when a warp holds a row
STREAM_BLOCK = 256     # threads per block of the streaming kernels
STREAM_WARP_MAX = 2048  # streaming: a warp per row up to this many classes, else a block


def _vector_width(dtype):
    return 16 // np.dtype(dtype).itemsize


def _fit_plans(kind, dtype, vector, clusters):
    """The fit kernels' template arguments ``(V, E, TPR, CL)``, smallest rows first:
    entries per load, entries per thread, threads per row, blocks per row."""
    width = _vector_width(dtype)
    most = FIT_ENTRIES[np.dtype(dtype)] // (2 if kind == "dense" else 1)
    v = width if vector else 1
    plans = [(v, n * width, 32, 1) for n in FIT_WARP_VECTORS if n * width <= most]
    plans += [(v, most, t, 1) for t in FIT_BLOCK_THREADS]
    if clusters:
        plans += [(v, most, FIT_BLOCK_THREADS[-1], c) for c in FIT_CLUSTERS]
    return plans


@functools.lru_cache(maxsize=1024)
def fit_plan(kind, cols, dtype, vector=True, clusters=True):
    """The template arguments of the fit kernel of ``kind`` ("sparse" or "dense") for
    rows of ``cols`` entries of ``dtype`` (see ``_fit_plans``); None where a row does
    not fit (then the streaming kernel runs)."""
    for plan in _fit_plans(kind, dtype, vector, clusters):
        _, entries, threads, blocks = plan
        if cols <= entries * threads * blocks:
            return plan
    return None


def _fit_name(kind, dtype, plan):
    v, e, tpr, cl = plan
    if cl == 1:
        return f"fx_{kind}_fit_rows<{CUDA_TYPES[np.dtype(dtype)]}, {v}, {e}, {tpr}>"
    return f"fx_{kind}_fit_cluster<{CUDA_TYPES[np.dtype(dtype)]}, {v}, {e}, {tpr}, {cl}>"


def name_expressions(clusters):
    """Every kernel the runtime may instantiate (with ``clusters``: on sm_90 and up)."""
    names = [f"fx_{kind}<{ctype}, {tpr}>"
             for kind in ("sparse_rows", "dense_rows", "row_partials", "sparse_grad_given",
                          "dense_sums_given", "dense_grad_given")
             for ctype in CUDA_TYPES.values() for tpr in (32, STREAM_BLOCK)]
    names += [_fit_name(kind, dtype, plan) for kind in ("sparse", "dense")
              for dtype in CUDA_TYPES for vector in (True, False)
              for plan in _fit_plans(kind, dtype, vector, clusters)]
    names += [f"fx_sparse_loss_stream<{CUDA_TYPES[dtype]}, {v}, {STREAM_BLOCK}>"
              for dtype in CUDA_TYPES for v in (_vector_width(dtype), 1)]
    return tuple(names) + ("fx_first_invalid_label",)


def _cupy():
    import cupy

    return cupy


@functools.lru_cache(maxsize=None)
def _device(device_id):
    """(multiprocessors, whether thread-block clusters are available) of a device."""
    properties = _cupy().cuda.runtime.getDeviceProperties(device_id)
    return properties["multiProcessorCount"], properties["major"] >= 9


@functools.lru_cache(maxsize=None)
def _module(name, clusters):
    """A module holding one kernel instantiation, compiled on first use (CuPy caches
    the binaries on disk, per device architecture)."""
    options = COMPILE_OPTIONS + (CLUSTER_OPTIONS if clusters else ())
    return _cupy().RawModule(code=source(), options=options, name_expressions=(name,))


@functools.lru_cache(maxsize=None)
def _device_kernel(name, device_id):
    _, clusters = _device(device_id)
    return _module(name, clusters).get_function(name)


def _kernel(name):
    return _device_kernel(name, _cupy().cuda.Device().id)


def __getattr__(name):
    # ``xp``, this backend's array namespace: CuPy, imported on first use (this module
    # is imported without CuPy by the compile test)
    if name == "xp":
        globals()["xp"] = _cupy()
        return globals()["xp"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=None)
def _unit_scale(device_id):
    return _cupy().ones(1)

# Invalid labels give NaN rows on the GPU, as in TensorFlow, unless validate=True.
checks_labels = False


def _launch_shape(rows, cols):
    """Streaming kernels: (threads per row, grid, block)."""
    tpr = 32 if cols <= STREAM_WARP_MAX else STREAM_BLOCK
    rows_per_block = STREAM_BLOCK // tpr
    blocks = max(1, min(-(-rows // rows_per_block), 65535 * 8))
    return tpr, (blocks,), (STREAM_BLOCK,)


def _vector_ok(arrays, cols):
    """Whether 16-byte loads and stores fit every row of these (N, C) arrays."""
    for array in arrays:
        width = _vector_width(array.dtype)
        if (cols % width or array.data.ptr % 16
                or (array.shape[0] > 1 and array.strides[0] % 16)):
            return False
    return True


def _fit_launch(kind, dtype, rows, cols, arrays):
    """(kernel, grid, block) of the fit kernel for these rows, or None."""
    sms, clusters = _device(_cupy().cuda.Device().id)
    plan = fit_plan(kind, cols, np.dtype(dtype), _vector_ok(arrays, cols), clusters)
    if plan is None:
        return None
    _, _, tpr, cl = plan
    if tpr == 32:
        grid, block = min(-(-rows // (WARP_BLOCK // 32)), sms * 64), WARP_BLOCK
    else:
        grid, block = min(rows, sms * 64 // cl) * cl, tpr
    return _kernel(_fit_name(kind, dtype, plan)), (grid,), (block,)


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


def _scale_array(scale):
    if scale is None:
        return _unit_scale(_cupy().cuda.Device().id)
    return _cupy().asarray(scale, dtype=_cupy().float64)


def _streams_loss(rows, cols, dtype):
    """Whether the loss alone is streamed: rows longer than a warp holds."""
    plan = fit_plan("sparse", cols, np.dtype(dtype))
    return plan is None or plan[2] > 32


def sparse_rows(logits, labels, loss, grad, scale, n_threads=None, *, ignore_index=None,
                class_weight=None, label_smoothing=0.0):
    """As ``fastxent._backends.cpu.sparse_rows``; ``n_threads`` is ignored on the GPU. The options
    are composed around the plain kernel (``compose_sparse_rows``)."""
    if ignore_index is not None or class_weight is not None or label_smoothing:
        compose_sparse_rows(_plain_sparse_rows, _cupy(), logits, labels, loss, grad, scale,
                            n_threads, ignore_index, class_weight, label_smoothing)
    else:
        _plain_sparse_rows(logits, labels, loss, grad, scale)


def _plain_sparse_rows(logits, labels, loss, grad, scale, n_threads=None):
    cupy = _cupy()
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    out = _Output(loss, x.dtype)
    g = _Output(grad, x.dtype) if grad is not None else None
    if g is not None and g.target is not grad and grad is logits:
        g.target = x  # in place over the contiguous copy, then copied back
    if g is None and _streams_loss(rows, cols, x.dtype):
        _kernel(f"fx_sparse_loss_stream<{CUDA_TYPES[x.dtype]}, "
                f"{_vector_width(x.dtype) if _vector_ok([x], cols) else 1}, {STREAM_BLOCK}>")(
            (min(rows, _device(cupy.cuda.Device().id)[0] * 16),), (STREAM_BLOCK,), (
                x, np.int64(rows), np.int64(cols), _element_stride(x, 0),
                cupy.ascontiguousarray(labels, dtype=cupy.int64),
                out.target, _element_stride(out.target, 0)))
        out.finish()
        return
    scale = _scale_array(scale)
    launch = _fit_launch("sparse", x.dtype, rows, cols,
                         [x] + ([g.target] if g is not None else []))
    if launch is None:
        tpr, grid, block = _launch_shape(rows, cols)
        launch = _kernel(f"fx_sparse_rows<{CUDA_TYPES[x.dtype]}, {tpr}>"), grid, block
    kernel, grid, block = launch
    kernel(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0),
        cupy.ascontiguousarray(labels, dtype=cupy.int64), scale,
        np.int64(0 if scale.size == 1 else 1),
        out.target, _element_stride(out.target, 0),
        _pointer_or_null(g), _element_stride(g.target, 0) if g is not None else np.int64(0)))
    out.finish()
    if g is not None:
        g.finish()


def dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale, n_threads=None, *,
               class_weight=None, mask=None):
    """As ``fastxent._backends.cpu.dense_rows``; ``n_threads`` is ignored on the GPU; class weights
    and masks are composed around the plain kernel (``compose_dense_rows``)."""
    if class_weight is not None or mask is not None:
        compose_dense_rows(_plain_dense_rows, _cupy(), logits, labels, loss, grad, labels_grad,
                           a, b, scale, n_threads, class_weight, mask)
    else:
        _plain_dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale)


def _plain_dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale, n_threads=None):
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
    scale = _scale_array(scale)
    launch = _fit_launch("dense", x.dtype, rows, cols,
                         [x, y] + [r.target for r in (g, gy) if r is not None])
    if launch is None:
        tpr, grid, block = _launch_shape(rows, cols)
        launch = _kernel(f"fx_dense_rows<{CUDA_TYPES[x.dtype]}, {tpr}>"), grid, block
    kernel, grid, block = launch
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
    """As ``fastxent._backends._kernels.row_partials``: partial normalizers of a block of
    classes."""
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_row_partials<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), m_out, r_out))


def sparse_grad_given(logits, m, r, xt, local_labels, scale, grad):
    """As ``fastxent._backends._kernels.sparse_grad_given``."""
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
    """As ``fastxent._backends._kernels.dense_sums_given``."""
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    y = _rows_contiguous(labels if labels.dtype == x.dtype else labels.astype(x.dtype))
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_dense_sums_given<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), y, _element_stride(y, 0),
        _per_row(m), np.float64(a), np.float64(b), sum_y, sum_yx))


def dense_grad_given(logits, labels, m, r, a, b, total, scale, grad):
    """As ``fastxent._backends._kernels.dense_grad_given``."""
    rows, cols = logits.shape
    if rows == 0:
        return
    x = _rows_contiguous(logits)
    y = _rows_contiguous(labels if labels.dtype == x.dtype else labels.astype(x.dtype))
    g = _Output(grad, x.dtype)
    tpr, grid, block = _launch_shape(rows, cols)
    _kernel(f"fx_dense_grad_given<{CUDA_TYPES[x.dtype]}, {tpr}>")(grid, block, (
        x, np.int64(rows), np.int64(cols), _element_stride(x, 0), y, _element_stride(y, 0),
        _per_row(m), _per_row(r), np.float64(a), np.float64(b), _per_row(total),
        _per_row(scale), g.target, _element_stride(g.target, 0)))
    g.finish()


def first_invalid_label(labels, num_classes):
    """Index of the first label outside ``[0, num_classes)``, or -1 (a device-side check)."""
    cupy = _cupy()
    rows = labels.size
    first = cupy.full((), rows, dtype=cupy.uint64)
    blocks = max(1, min(-(-rows // STREAM_BLOCK), 4096))
    _kernel("fx_first_invalid_label")((blocks,), (STREAM_BLOCK,), (
        cupy.ascontiguousarray(labels, dtype=cupy.int64), np.int64(rows),
        np.int64(num_classes), first))
    value = int(first.get())
    return -1 if value >= rows else value


def info():
    cupy = _cupy()
    device = cupy.cuda.Device()
    return {"path": "cuda", "device": device.id,
            "name": cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode()}


def compose_sparse_rows(plain_sparse_rows, xp, logits, labels, loss, grad, scale, n_threads,
                        ignore_index, class_weight, label_smoothing):
    """A backend's ``sparse_rows`` with the options, from its plain kernel.

    The plain kernel writes ``k (lse - x_t)``'s ``lse - x_t`` and ``scale * k * (p - onehot)``
    in its pass; the loss's spread needs ``x . u`` (read before the kernel, which may
    overwrite the logits) and the gradient one more pass, ``- eps / C (u - U onehot)``.
    Those passes make temporaries the size of the logits: a backend whose kernel takes
    the options (the CPU's) has none.
    """
    rows, num_classes = logits.shape
    eps = float(label_smoothing)
    keep = None if ignore_index is None else labels != ignore_index
    t = labels if keep is None else xp.where(keep, labels, 0)
    u = class_weight
    u_t = 1.0 if u is None else u[t]
    total = float(num_classes) if u is None else float(xp.sum(u))
    k = (1.0 - eps) * u_t + eps * total / num_classes
    kernel_scale = xp.broadcast_to(xp.asarray(scale, dtype=np.float64) * k, (rows,))
    if keep is not None:
        kernel_scale = xp.where(keep, kernel_scale, 0.0)
    spread = None
    if eps:
        x_t = xp.take_along_axis(logits, t[:, None], axis=1)[:, 0].astype(np.float64)
        weights = xp.ones(num_classes) if u is None else u
        spread = logits.astype(np.float64, copy=False) @ weights - total * x_t
    ce = xp.empty(rows, np.float64)
    plain_sparse_rows(logits, t, ce, grad, xp.ascontiguousarray(kernel_scale), n_threads)
    row = ce * u_t
    if eps:
        row = (1.0 - eps) * row + eps / num_classes * (total * ce - spread)
    if keep is not None:
        row = xp.where(keep, row, 0.0)
    loss[...] = row
    if grad is None:
        return
    if eps:
        coef = xp.broadcast_to(xp.asarray(scale, dtype=np.float64), (rows,)) * (eps / num_classes)
        if keep is not None:
            coef = xp.where(keep, coef, 0.0)
        grad -= (coef[:, None] * (1.0 if u is None else u[None, :])).astype(grad.dtype)
        grad[xp.arange(rows), t] += (coef * total).astype(grad.dtype)
    if keep is not None:
        grad[~keep] = 0


def compose_dense_rows(plain_dense_rows, xp, logits, labels, loss, grad, labels_grad, a, b,
                       scale, n_threads, class_weight=None, mask=None):
    """A backend's ``dense_rows`` with class weights and a mask of entries, from its plain
    kernel: the weighted labels ``u * (a * labels + b)`` and the masked logits (-inf where
    masked, labels 0 there) are formed whole (temporaries the size of the logits, which the
    CPU's kernel does without), then the plain kernel runs with them; a row with no entry
    kept is 0."""
    weighted = a * labels.astype(np.float64) + b
    if class_weight is not None:
        weighted = weighted * class_weight
    if mask is not None:
        weighted = xp.where(mask, weighted, 0.0)
        logits = xp.where(mask, logits, -np.inf).astype(logits.dtype)
    plain_dense_rows(logits, weighted.astype(labels.dtype), loss, grad, labels_grad, 1.0, 0.0,
                     scale, n_threads)
    if labels_grad is not None:
        labels_grad *= (a * (1.0 if class_weight is None else class_weight)).astype(
            labels_grad.dtype)
    if mask is not None:
        empty = ~xp.any(mask, axis=1)
        loss[empty] = 0
        for g in (grad, labels_grad):
            if g is not None:
                g[empty] = 0
        if labels_grad is not None:
            labels_grad[~mask] = 0
