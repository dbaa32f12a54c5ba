# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""CPU kernels: fused softmax cross-entropy over the rows of 2-D arrays.

The Python layers hand every array here as a 2-D (rows, classes) or 1-D
(rows,) NumPy view of any strides, in float16, float32 or float64. A row that
is contiguous, aligned and already in the compute type is used where it lies;
any other row is gathered into a per-thread scratch row (converting float16
to float32), and a gradient row is scattered back the same way. Nothing here
allocates memory the size of the logits.

Argument checking is the caller's job (``fastxent._checks``); these
functions trust shapes, dtypes and label ranges, except that the C row
kernels turn an out-of-range label into a NaN row instead of reading out of
bounds.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t, uint16_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cimport numpy as cnp

import numpy as np

cnp.import_array()

cdef extern from "fx_rows.h" nogil:
    double fx_sparse_row_f32(const float *x, Py_ssize_t n, Py_ssize_t t,
                             double scale, float *g)
    double fx_sparse_row_f64(const double *x, Py_ssize_t n, Py_ssize_t t,
                             double scale, double *g)
    double fx_dense_row_f32(const float *x, const float *y, Py_ssize_t n,
                            double a, double b, double scale, float *g, float *gy)
    double fx_dense_row_f64(const double *x, const double *y, Py_ssize_t n,
                            double a, double b, double scale, double *g, double *gy)
    int fx_max_threads()
    int fx_have_openmp()

cdef extern from "fx_half.h" nogil:
    float fx_half_to_float(uint16_t h)
    uint16_t fx_float_to_half(float f)

ctypedef fused real:
    float
    double

cdef enum Kind:
    F16 = 0
    F32 = 1
    F64 = 2

cdef enum:
    # Below this many logits a call runs on one thread: starting a team costs more.
    SERIAL_BELOW = 32768


cdef struct Strided:
    char *data
    Py_ssize_t rows
    Py_ssize_t cols
    Py_ssize_t row_stride      # bytes
    Py_ssize_t col_stride      # bytes
    int kind


cdef int _kind_of(cnp.ndarray a) except -1:
    cdef str char = a.dtype.char
    if char == "e":
        return F16
    if char == "f":
        return F32
    if char == "d":
        return F64
    raise TypeError(f"kernel got an array of dtype {a.dtype}")


cdef Strided _strided(cnp.ndarray a) except *:
    """View a 1-D or 2-D native-order float array; 1-D means one column."""
    cdef Strided s
    if not a.dtype.isnative:
        raise TypeError("kernel got a non-native byte order")
    s.data = cnp.PyArray_BYTES(a)
    s.kind = _kind_of(a)
    if a.ndim == 2:
        s.rows, s.cols = a.shape[0], a.shape[1]
        s.row_stride, s.col_stride = a.strides[0], a.strides[1]
    elif a.ndim == 1:
        s.rows, s.cols = a.shape[0], 1
        s.row_stride, s.col_stride = a.strides[0], 0
    else:
        raise ValueError("kernel arrays are 1-D or 2-D")
    return s


cdef inline double _load(const char *p, int kind) noexcept nogil:
    cdef uint16_t h
    cdef float f
    cdef double d
    if kind == F16:
        memcpy(&h, p, 2)
        return fx_half_to_float(h)
    if kind == F32:
        memcpy(&f, p, 4)
        return f
    memcpy(&d, p, 8)
    return d


cdef inline void _store(char *p, int kind, double v) noexcept nogil:
    cdef uint16_t h
    cdef float f
    if kind == F16:
        h = fx_float_to_half(<float>v)
        memcpy(p, &h, 2)
    elif kind == F32:
        f = <float>v
        memcpy(p, &f, 4)
    else:
        memcpy(p, &v, 8)


cdef inline bint _direct(const Strided *a, real *witness) noexcept nogil:
    """Whether rows of ``a`` can be used in place as ``real`` arrays."""
    if real is float:
        if a.kind != F32:
            return False
    else:
        if a.kind != F64:
            return False
    return (a.col_stride == sizeof(real) or a.cols <= 1) and \
        (<size_t>a.data) % sizeof(real) == 0 and a.row_stride % sizeof(real) == 0


cdef inline real *_row(const Strided *a, Py_ssize_t i, bint direct, real *scratch) noexcept nogil:
    """Row ``i`` of ``a`` as contiguous ``real``: in place, or gathered into scratch."""
    cdef const char *p = a.data + i * a.row_stride
    cdef Py_ssize_t j
    if direct:
        return <real *>p
    for j in range(a.cols):
        scratch[j] = <real>_load(p + j * a.col_stride, a.kind)
    return scratch


cdef inline void _scatter(const Strided *a, Py_ssize_t i, const real *row) noexcept nogil:
    cdef char *p = a.data + i * a.row_stride
    cdef Py_ssize_t j
    for j in range(a.cols):
        _store(p + j * a.col_stride, a.kind, row[j])


cdef int _team_size(object n_threads, Py_ssize_t rows, Py_ssize_t cols) except -1:
    cdef Py_ssize_t nt
    if n_threads is None:
        nt = fx_max_threads()
    else:
        nt = n_threads
    if nt < 1:
        raise ValueError(f"n_threads must be None or >= 1, got {n_threads}")
    if rows * cols < SERIAL_BELOW or not fx_have_openmp():
        return 1
    return <int>min(nt, rows)


cdef class _Scratch:
    """Per-thread scratch rows, allocated with the GIL held before any output is written."""
    cdef char *block
    cdef Py_ssize_t per_thread

    def __cinit__(self, int n_threads, Py_ssize_t rows_per_thread, Py_ssize_t row_bytes):
        self.per_thread = rows_per_thread * row_bytes
        self.block = NULL
        if self.per_thread:
            self.block = <char *>malloc(n_threads * self.per_thread)
            if self.block == NULL:
                raise MemoryError("fastxent could not allocate its per-thread scratch rows")

    def __dealloc__(self):
        free(self.block)


cdef void _sparse_rows(real *witness, Strided *x, const int64_t *labels, Strided *loss,
                       Strided *grad, const double *scale, Py_ssize_t scale_step,
                       _Scratch scratch, int n_threads) noexcept nogil:
    cdef Py_ssize_t i, n = x.rows, c = x.cols
    cdef bint x_direct = _direct(x, witness)
    cdef bint g_direct = grad != NULL and _direct(grad, witness)
    cdef real *xbuf = NULL
    cdef real *gbuf = NULL
    cdef real *xr
    cdef real *gr
    cdef double value
    with parallel(num_threads=n_threads):
        xbuf = <real *>(scratch.block + threadid() * scratch.per_thread)
        gbuf = xbuf + c
        for i in prange(n, schedule='static'):
            xr = _row(x, i, x_direct, xbuf)
            gr = NULL
            if grad != NULL:
                gr = <real *>(grad.data + i * grad.row_stride) if g_direct else gbuf
            if real is float:
                value = fx_sparse_row_f32(xr, c, labels[i], scale[i * scale_step], gr)
            else:
                value = fx_sparse_row_f64(xr, c, labels[i], scale[i * scale_step], gr)
            _store(loss.data + i * loss.row_stride, loss.kind, value)
            if grad != NULL and not g_direct:
                _scatter(grad, i, gr)


cdef void _dense_rows(real *witness, Strided *x, Strided *y, Strided *loss, Strided *grad,
                      Strided *ygrad, double a, double b, const double *scale,
                      Py_ssize_t scale_step, _Scratch scratch, int n_threads) noexcept nogil:
    cdef Py_ssize_t i, n = x.rows, c = x.cols
    cdef bint x_direct = _direct(x, witness)
    cdef bint y_direct = _direct(y, witness)
    cdef bint g_direct = grad != NULL and _direct(grad, witness)
    cdef bint gy_direct = ygrad != NULL and _direct(ygrad, witness)
    cdef real *xbuf = NULL
    cdef real *ybuf = NULL
    cdef real *gbuf = NULL
    cdef real *gybuf = NULL
    cdef real *xr
    cdef real *yr
    cdef real *gr
    cdef real *gyr
    cdef double value
    with parallel(num_threads=n_threads):
        xbuf = <real *>(scratch.block + threadid() * scratch.per_thread)
        ybuf = xbuf + c
        gbuf = ybuf + c
        gybuf = gbuf + c
        for i in prange(n, schedule='static'):
            xr = _row(x, i, x_direct, xbuf)
            yr = _row(y, i, y_direct, ybuf)
            gr = NULL
            gyr = NULL
            if grad != NULL:
                gr = <real *>(grad.data + i * grad.row_stride) if g_direct else gbuf
            if ygrad != NULL:
                gyr = <real *>(ygrad.data + i * ygrad.row_stride) if gy_direct else gybuf
            if real is float:
                value = fx_dense_row_f32(xr, yr, c, a, b, scale[i * scale_step], gr, gyr)
            else:
                value = fx_dense_row_f64(xr, yr, c, a, b, scale[i * scale_step], gr, gyr)
            _store(loss.data + i * loss.row_stride, loss.kind, value)
            if grad != NULL and not g_direct:
                _scatter(grad, i, gr)
            if ygrad != NULL and not gy_direct:
                _scatter(ygrad, i, gyr)


cdef inline Py_ssize_t _scale_step(const double[::1] scale, Py_ssize_t rows) except -1:
    if scale.shape[0] == rows:
        return 1
    if scale.shape[0] == 1:
        return 0
    raise ValueError("scale must have one entry per row, or one entry")


def sparse_rows(cnp.ndarray logits, const int64_t[::1] labels, cnp.ndarray loss,
                cnp.ndarray grad, const double[::1] scale, n_threads=None):
    """Per-row sparse cross-entropy.

    Parameters
    ----------
    logits : ndarray, shape (N, C), float16/32/64, any strides
    labels : ndarray, shape (N,), int64, contiguous, each in [0, C)
    loss : ndarray, shape (N,), float16/32/64, written
    grad : ndarray or None, shape (N, C), written with ``scale * (p - onehot)``;
        may be ``logits`` itself
    scale : ndarray, float64, shape (N,) or (1,)
    n_threads : int or None
    """
    cdef Strided x = _strided(logits)
    cdef Strided out = _strided(loss)
    cdef Strided g
    cdef Strided *gp = NULL
    cdef Py_ssize_t step = _scale_step(scale, x.rows)
    cdef int nt = _team_size(n_threads, x.rows, x.cols)
    cdef bint f64 = x.kind == F64
    cdef Py_ssize_t item = 8 if f64 else 4
    cdef _Scratch scratch
    if grad is not None:
        g = _strided(grad)
        gp = &g
    if x.rows == 0:
        return
    scratch = _Scratch(nt, 2, x.cols * item)
    with nogil:
        if f64:
            _sparse_rows(<double *>NULL, &x, &labels[0], &out, gp, &scale[0], step, scratch, nt)
        else:
            _sparse_rows(<float *>NULL, &x, &labels[0], &out, gp, &scale[0], step, scratch, nt)


def dense_rows(cnp.ndarray logits, cnp.ndarray labels, cnp.ndarray loss, cnp.ndarray grad,
               cnp.ndarray labels_grad, double a, double b, const double[::1] scale,
               n_threads=None):
    """Per-row dense cross-entropy with labels ``a * labels + b``.

    Parameters
    ----------
    logits : ndarray, shape (N, C), float16/32/64, any strides
    labels : ndarray, shape (N, C), float16/32/64, any strides (0 for broadcast)
    loss : ndarray, shape (N,), written
    grad : ndarray or None, shape (N, C), written with
        ``scale * (p * sum(y') - y')``; may be ``logits`` itself
    labels_grad : ndarray or None, shape (N, C), written with ``scale * a * (lse - x)``
    a, b : float
    scale : ndarray, float64, shape (N,) or (1,)
    n_threads : int or None
    """
    cdef Strided x = _strided(logits)
    cdef Strided y = _strided(labels)
    cdef Strided out = _strided(loss)
    cdef Strided g, gy
    cdef Strided *gp = NULL
    cdef Strided *gyp = NULL
    cdef Py_ssize_t step = _scale_step(scale, x.rows)
    cdef int nt = _team_size(n_threads, x.rows, x.cols)
    cdef bint f64 = x.kind == F64
    cdef Py_ssize_t item = 8 if f64 else 4
    cdef _Scratch scratch
    if grad is not None:
        g = _strided(grad)
        gp = &g
    if labels_grad is not None:
        gy = _strided(labels_grad)
        gyp = &gy
    if x.rows == 0 or x.cols == 0:
        return
    scratch = _Scratch(nt, 4, x.cols * item)
    with nogil:
        if f64:
            _dense_rows(<double *>NULL, &x, &y, &out, gp, gyp, a, b, &scale[0], step, scratch, nt)
        else:
            _dense_rows(<float *>NULL, &x, &y, &out, gp, gyp, a, b, &scale[0], step, scratch, nt)


def half_to_float(const uint16_t[::1] bits, float[::1] out):
    """Convert float16 bit patterns to float32 with the kernels' own routine (for tests)."""
    cdef Py_ssize_t i
    for i in range(bits.shape[0]):
        out[i] = fx_half_to_float(bits[i])


def float_to_half(const float[::1] values, uint16_t[::1] out):
    """Convert float32 to float16 bit patterns with the kernels' own routine (for tests)."""
    cdef Py_ssize_t i
    for i in range(values.shape[0]):
        out[i] = fx_float_to_half(values[i])


def build_info():
    """What this build of the kernels has: OpenMP, and its default thread count."""
    return {"openmp": bool(fx_have_openmp()), "max_threads": fx_max_threads(),
            "path": "scalar-c"}
