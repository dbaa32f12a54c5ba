# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""CPU kernels: fused softmax cross-entropy over the rows of 2-D arrays.

The Python layers hand every array here as a 2-D (rows, classes) or 1-D
(rows,) NumPy view of any strides, in float16, float32 or float64. A row that
is contiguous, aligned and already in the compute type is used where it lies;
any other row is gathered into a per-thread scratch row (converting float16
to float32), and a gradient row is scattered back the same way. Nothing here
allocates memory the size of the logits.

Argument checking is the caller's job (``fastxent._core.checks``); these
functions trust shapes, dtypes and label ranges, except that the C row
kernels turn an out-of-range label into a NaN row instead of reading out of
bounds.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from libc.math cimport INFINITY, NAN, log1p

cimport numpy as cnp

import numpy as np

cnp.import_array()

cdef extern from "fx_omp.h" nogil:
    int fx_max_threads()
    int fx_have_openmp()

cdef extern from "fx_kernels.h" nogil:
    enum: FX_PART
    enum: FX_CHUNK_F32
    enum: FX_CHUNK_F64
    enum: FX_KINDS
    Py_ssize_t fx_work_size(Py_ssize_t n)
    Py_ssize_t fx_work_maxes(Py_ssize_t n)
    ctypedef struct fx_partial:
        double m
        double r
        double sy
        double syx
    ctypedef double (*fx_sparse_row_fn)(const void *x, Py_ssize_t n, Py_ssize_t t, double c,
                                        const void *u, double a, double b, double scale,
                                        void *g, double *work) noexcept nogil
    ctypedef double (*fx_dense_row_fn)(const void *x, const void *y, Py_ssize_t n, double a,
                                       double b, double scale, void *g, void *gy,
                                       double *work) noexcept nogil
    ctypedef void (*fx_part_fn)(const void *x, const void *y, Py_ssize_t n, double a, double b,
                                void *e, double *chunk_max, fx_partial *out) noexcept nogil
    ctypedef void (*fx_grad_finish_fn)(void *g, const void *e, const void *y, Py_ssize_t n,
                                       double a, double b, const double *chunk_max, double m,
                                       double scale, double total, double r) noexcept nogil
    ctypedef void (*fx_sparse_grad_part_fn)(const void *x, Py_ssize_t n, double m, double inv,
                                            void *g) noexcept nogil
    ctypedef void (*fx_dense_sums_part_fn)(const void *x, const void *y, Py_ssize_t n,
                                           double m, double a, double b, double gy_scale,
                                           double log_s, void *gy, double *sum_y,
                                           double *sum_yx) noexcept nogil
    ctypedef void (*fx_dense_grad_part_fn)(const void *x, const void *y, Py_ssize_t n,
                                           double m, double a, double b, double scale,
                                           double total, double r, void *g) noexcept nogil
    ctypedef void (*fx_sparse_block_fn)(const void *x, Py_ssize_t xs, Py_ssize_t n,
                                        const int64_t *t, const double *scale,
                                        Py_ssize_t scale_step, void *g, Py_ssize_t gs,
                                        void *loss, Py_ssize_t ls, void *work) noexcept nogil
    ctypedef void (*fx_sparse_partial_fn)(const void *x, Py_ssize_t xs, Py_ssize_t n,
                                          const int64_t *t, const double *scale,
                                          Py_ssize_t scale_step, void *g, Py_ssize_t gs,
                                          void *loss, Py_ssize_t ls, void *work,
                                          Py_ssize_t rows) noexcept nogil
    ctypedef void (*fx_dense_block_fn)(const void *x, Py_ssize_t xs, const void *y,
                                       Py_ssize_t ys, Py_ssize_t n, double a, double b,
                                       const double *scale, Py_ssize_t scale_step, void *g,
                                       Py_ssize_t gs, void *gy, Py_ssize_t gys, void *loss,
                                       Py_ssize_t ls, void *work) noexcept nogil
    ctypedef void (*fx_dense_partial_fn)(const void *x, Py_ssize_t xs, const void *y,
                                         Py_ssize_t ys, Py_ssize_t n, double a, double b,
                                         const double *scale, Py_ssize_t scale_step, void *g,
                                         Py_ssize_t gs, void *gy, Py_ssize_t gys, void *loss,
                                         Py_ssize_t ls, void *work, Py_ssize_t rows) noexcept nogil
    ctypedef struct fx_kernels:
        const char *name
        int block_rows[FX_KINDS]
        int lanes_cols[FX_KINDS]
        int lanes_grad_cols[FX_KINDS]
        int batch_cols[FX_KINDS]
        int batch_grad_cols[FX_KINDS]
        int dense_batch_cols
        fx_sparse_row_fn sparse_row[FX_KINDS]
        fx_dense_row_fn dense_row[FX_KINDS]
        fx_part_fn part[FX_KINDS]
        fx_grad_finish_fn grad_finish[FX_KINDS]
        fx_sparse_grad_part_fn sparse_grad_part[FX_KINDS]
        fx_dense_sums_part_fn dense_sums_part[FX_KINDS]
        fx_dense_grad_part_fn dense_grad_part[FX_KINDS]
        fx_sparse_block_fn sparse_lanes[FX_KINDS]
        fx_sparse_partial_fn sparse_lanes_partial[FX_KINDS]
        fx_dense_block_fn dense_lanes[FX_KINDS]
        fx_dense_partial_fn dense_lanes_partial[FX_KINDS]
        fx_sparse_block_fn sparse_batch[FX_KINDS]
        fx_sparse_partial_fn sparse_batch_partial[FX_KINDS]
        fx_dense_block_fn dense_batch[FX_KINDS]
        fx_dense_partial_fn dense_batch_partial[FX_KINDS]
        void (*put[FX_KINDS])(const void *values, Py_ssize_t n, void *out, Py_ssize_t step) noexcept nogil
        void (*exp_f32)(const float *inp, float *out, Py_ssize_t n) noexcept nogil
        void (*exp_f64)(const double *inp, double *out, Py_ssize_t n) noexcept nogil
        void (*log1p_f32)(const float *inp, float *out, Py_ssize_t n) noexcept nogil
        void (*log1p_f64)(const double *inp, double *out, Py_ssize_t n) noexcept nogil
    int fx_supported_kernels(const fx_kernels **out)
    int fx_built_kernels(const fx_kernels **out)
    void fx_combine(double *m, double *r, double mc, double rc)
    void fx_partial_empty(fx_partial *p)
    void fx_combine_partial(fx_partial *acc, const fx_partial *p)
    void fx_partial_finish(fx_partial *row)
    double fx_sparse_loss(double m, double r, double xt)
    double fx_dense_loss(double sy, double log_s, double syx)
    double fx_sparse_target_grad(double m, double r, double xt, double scale)

cdef extern from "fx_half.h" nogil:
    float fx_half_to_float(uint16_t h)
    uint16_t fx_float_to_half(float f)
    float fx_bfloat16_to_float(uint16_t h)
    uint16_t fx_float_to_bfloat16(float f)

ctypedef fused real:
    float
    double

cdef enum Kind:       # fx_kind: the storage kinds, each the index of the table's entries
    F16 = 0
    F32 = 1
    F64 = 2
    BF16 = 3    # ml_dtypes.bfloat16, computed in float32 like float16

cdef enum Family:     # fx_kernels.h's kernel families
    ROWS = 0
    LANES = 1
    BATCH = 2

cdef enum:
    # Below this many logits a call runs on one thread: starting a team costs more.
    SERIAL_BELOW = 32768
    # The most rows a block kernel takes (VF_LANES of the widest instruction set).
    MAX_LANES = 64


# --- the instruction-set path -------------------------------------------------------------

cdef const fx_kernels *_supported[16]
cdef int _n_supported = fx_supported_kernels(_supported)
cdef const fx_kernels *_active = _supported[0]


def paths():
    """Names of the kernel paths this CPU supports, best first (the last is the baseline)."""
    return [(<bytes>_supported[k].name).decode() for k in range(_n_supported)]


def built():
    """Names of every kernel path built into this extension (fx_isa_list.h's order),
    including any this CPU cannot run."""
    cdef const fx_kernels *tables[16]
    cdef int count = fx_built_kernels(tables)
    return [(<bytes>tables[k].name).decode() for k in range(count)]


def path():
    """Name of the kernel path in use."""
    return (<bytes>_active.name).decode()


def set_path(name):
    """Use the kernel path ``name`` (one of :func:`paths`, or "baseline").

    Not thread-safe: meant for start-up (``FASTXENT_CPU_PATH``) and tests.
    """
    global _active
    names = paths()
    if name == "baseline":
        name = names[len(names) - 1]
    if name not in names:
        raise ValueError(f"kernel path {name!r} is not supported here; choose from "
                         f"{names + ['baseline']}")
    _active = _supported[names.index(name)]


def _path_from_environment():
    import os
    import warnings

    requested = os.environ.get("FASTXENT_CPU_PATH")
    if requested:
        try:
            set_path(requested)
        except ValueError as error:
            warnings.warn(f"FASTXENT_CPU_PATH: {error}; using {path()}", RuntimeWarning)


_path_from_environment()


# --- strided views ------------------------------------------------------------------------

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
    if a.dtype.name == "bfloat16" and a.dtype.itemsize == 2:
        return BF16
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
    if kind == BF16:
        memcpy(&h, p, 2)
        return fx_bfloat16_to_float(h)
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
    elif kind == BF16:
        h = fx_float_to_bfloat16(<float>v)
        memcpy(p, &h, 2)
    elif kind == F32:
        f = <float>v
        memcpy(p, &f, 4)
    else:
        memcpy(p, &v, 8)


cdef inline Py_ssize_t _itemsize(int kind) noexcept nogil:
    return 8 if kind == F64 else (4 if kind == F32 else 2)


cdef inline bint _direct(const Strided *a, int kind) noexcept nogil:
    """Whether rows of ``a`` can be used in place as contiguous arrays of ``kind``."""
    cdef Py_ssize_t item = _itemsize(kind)
    if a == NULL:
        return True
    return a.kind == kind and (a.col_stride == item or a.cols <= 1) and \
        (<size_t>a.data) % item == 0 and a.row_stride % item == 0


cdef inline int _compute_kind(int kind) noexcept nogil:
    return F64 if kind == F64 else F32


cdef inline int _storage(const Strided *x, const Strided *y, const Strided *g,
                         const Strided *gy) noexcept nogil:
    """The kind of the rows the kernels see: the logits' own, converted in registers, when
    every array is usable in place in it; else the compute kind, into which the rest are
    gathered (and converted) row by row."""
    if _direct(x, x.kind) and _direct(y, x.kind) and _direct(g, x.kind) and _direct(gy, x.kind):
        return x.kind
    return _compute_kind(x.kind)


cdef inline void *_row(const Strided *a, Py_ssize_t i, bint direct, real *scratch) noexcept nogil:
    """Row ``i`` of ``a``: in place (its storage kind), or gathered into scratch as ``real``."""
    cdef const char *p = a.data + i * a.row_stride
    cdef Py_ssize_t j
    if direct:
        return <void *>p
    for j in range(a.cols):
        scratch[j] = <real>_load(p + j * a.col_stride, a.kind)
    return <void *>scratch


cdef inline void _scatter(const Strided *a, Py_ssize_t i, const real *row) noexcept nogil:
    cdef char *p = a.data + i * a.row_stride
    cdef Py_ssize_t j
    for j in range(a.cols):
        _store(p + j * a.col_stride, a.kind, row[j])


cdef class _Scratch:
    """Per-thread scratch, allocated with the GIL held before any output is written: room
    for gathered rows (``row_bytes``), then ``work_doubles`` doubles of the kernels' work
    space (the chunks' maxes of a row with a gradient; the exps of rows of a half kind)."""
    cdef char *block
    cdef Py_ssize_t per_thread
    cdef Py_ssize_t work_offset

    def __cinit__(self, Py_ssize_t n_threads, Py_ssize_t row_bytes, Py_ssize_t work_doubles=0):
        self.work_offset = (row_bytes + 63) // 64 * 64
        self.per_thread = max(64, (self.work_offset + 8 * work_doubles + 63) // 64 * 64)
        self.block = <char *>malloc(n_threads * self.per_thread)
        if self.block == NULL:
            raise MemoryError("fastxent could not allocate its per-thread scratch")

    def __dealloc__(self):
        free(self.block)


cdef inline char *_rows_of(_Scratch s, int thread) noexcept nogil:
    return s.block + thread * s.per_thread


cdef inline double *_work_of(_Scratch s, int thread) noexcept nogil:
    return <double *>(s.block + thread * s.per_thread + s.work_offset)


# --- the plan of a call ---------------------------------------------------------------------

cdef int _forced_family = -1


def force_family(name):
    """Run every call's rows with the kernel family ``name`` ("rows", "batch" or "lanes":
    rows in lanes only up to four vectors' width of classes) where it can run, or with the
    planner's choice (None). Not thread-safe: for tests and tools/crossovers.py."""
    global _forced_family
    names = {None: -1, "rows": ROWS, "lanes": LANES, "batch": BATCH}
    if name not in names:
        raise ValueError(f"family must be one of {list(names)}, got {name!r}")
    _forced_family = names[name]


cdef inline int _family(int store, Py_ssize_t c, bint dense, bint grad) noexcept nogil:
    """The kernel family for rows of ``c`` classes of kind ``store`` (all usable in place),
    with sparse or dense labels, with or without a gradient."""
    if _forced_family == LANES:
        return LANES if c <= 4 * _active.block_rows[store] else ROWS
    if _forced_family >= 0:
        return _forced_family
    if c <= (_active.lanes_grad_cols[store] if grad else _active.lanes_cols[store]):
        return LANES
    if dense:
        return BATCH if c <= _active.dense_batch_cols else ROWS
    return BATCH if c <= (_active.batch_grad_cols[store] if grad else _active.batch_cols[store]) \
        else ROWS


cdef struct Plan:
    int kind            # compute kind: F32 or F64
    int store           # the kind of every row handed to a kernel (_storage)
    int family          # ROWS, LANES or BATCH
    int threads         # team for row-parallel work
    int requested       # threads asked for (or OpenMP's default)
    bint small          # too few logits for a team: one thread
    int split_threads   # > 1: split each row's class axis over this many threads
    Py_ssize_t lanes    # rows per block of the block families
    Py_ssize_t blocks   # number of such blocks
    bint x_direct, y_direct, g_direct, gy_direct


cdef Plan _plan(Strided *x, Strided *y, Strided *g, Strided *gy, object n_threads) except *:
    """How to run one call: the storage kind, kernel family, thread counts and direct-access
    flags."""
    cdef Plan p
    cdef Py_ssize_t requested
    cdef bint all_direct
    p.kind = _compute_kind(x.kind)
    p.store = _storage(x, y, g, gy)
    p.x_direct = _direct(x, p.store)
    p.y_direct = _direct(y, p.store)
    p.g_direct = _direct(g, p.store)
    p.gy_direct = _direct(gy, p.store)
    all_direct = p.x_direct and p.y_direct and p.g_direct and p.gy_direct
    requested = fx_max_threads() if n_threads is None else n_threads
    if requested < 1:
        raise ValueError(f"n_threads must be None or >= 1, got {n_threads}")
    p.requested = <int>requested
    p.small = x.rows * x.cols < SERIAL_BELOW or not fx_have_openmp()
    p.threads = 1 if p.small else <int>min(requested, x.rows)
    p.lanes = _active.block_rows[p.store]
    p.family = (_family(p.store, x.cols, y != NULL, g != NULL or gy != NULL)
                if all_direct else ROWS)
    p.blocks = (x.rows + p.lanes - 1) // p.lanes if p.family != ROWS else 0   # the last partial
    if p.family != ROWS and not p.small:
        p.threads = <int>min(requested, p.blocks)
    p.split_threads = 1
    if (p.family == ROWS and not p.small and requested > 1 and x.rows < requested
            and x.cols >= 2 * FX_PART and all_direct):
        p.split_threads = <int>requested
    return p


cdef void _rows_only(Plan *p, Strided *x, Strided *y, Strided *g, Strided *gy,
                     bint compute_kind) noexcept:
    """Run the call with the row kernels alone (the options are coefficients of those), in
    the compute kind if asked (rows formed in scratch)."""
    if compute_kind and p.store != p.kind:
        p.store = p.kind
        p.x_direct = _direct(x, p.store)
        p.y_direct = _direct(y, p.store)
        p.g_direct = _direct(g, p.store)
        p.gy_direct = _direct(gy, p.store)
    p.threads = 1 if p.small else <int>min(p.requested, x.rows)
    p.family = ROWS
    p.blocks = 0
    p.split_threads = 1


cdef Py_ssize_t _block_work(const Plan *p, Py_ssize_t c, bint want_grad) noexcept:
    """Doubles of work space per thread that the plan's kernels need."""
    cdef Py_ssize_t need = fx_work_size(c) if want_grad else 0
    if p.family == BATCH and want_grad and p.store != p.kind:   # exps of a half kind, in float
        need = max(need, (p.lanes * c + 1) // 2 + 8)
    return need


cdef inline Py_ssize_t _parts(Py_ssize_t c) noexcept nogil:
    return (c + FX_PART - 1) // FX_PART


cdef inline Py_ssize_t _chunk_of(int kind) noexcept nogil:
    return FX_CHUNK_F64 if kind == F64 else FX_CHUNK_F32


cdef inline void *_exps_of(const Plan *p, void *g, double *work, Py_ssize_t c) noexcept nogil:
    """Where a row kernel keeps a row's exps: in its gradient, or (a half kind) in the work
    space after the chunks' maxes (fx_kernels_impl.h's exps_of)."""
    if g == NULL:
        return NULL
    return g if p.store == p.kind else <void *>(work + fx_work_maxes(c))


cdef struct Options:
    # PyTorch's options of integer labels as the coefficients of the generalized sparse
    # row (fx_kernels_impl.h): target coefficient c = (1 - eps) * w[t], spread y' = a * u
    bint on
    const double *class_weight   # w, float64, or NULL (all 1)
    const char *spread           # u in the compute type: w, or ones; NULL without smoothing
    double one_minus_eps
    double a                     # eps / C
    bint has_ignore
    int64_t ignore_index


cdef Options _NO_OPTIONS = Options(False, NULL, NULL, 1.0, 0.0, False, 0)


cdef object _options_of(Options *o, object ignore_index, const double[::1] class_weight,
                        double label_smoothing, Py_ssize_t c, object spread_dtype):
    """Fill ``o`` with PyTorch's options of rows of ``c`` classes (the loss's and the linear
    pass's one builder); returns the spread array (``spread_dtype``, the rows' compute
    kind), which must outlive the call, or None."""
    cdef object spread = None
    o[0] = _NO_OPTIONS
    if ignore_index is None and class_weight is None and label_smoothing == 0.0:
        return None
    if class_weight is not None and class_weight.shape[0] != c:
        raise ValueError("class_weight must have one entry per class")
    o.on = True
    o.has_ignore = ignore_index is not None
    o.ignore_index = ignore_index if o.has_ignore else 0
    o.class_weight = &class_weight[0] if class_weight is not None and c else NULL
    o.one_minus_eps = 1.0 - label_smoothing
    if label_smoothing != 0.0:
        # the spread rides in the labels' place of the pass, in the kind of the rows
        spread = (np.ones(c) if class_weight is None else np.asarray(class_weight)
                  ).astype(spread_dtype)
        o.spread = <const char *>cnp.PyArray_DATA(spread)
        o.a = label_smoothing / c
    return spread


cdef inline double _sparse_row(int store, const Options *o, const void *xr, Py_ssize_t c,
                               int64_t t, double scale, void *gr, double *work) noexcept nogil:
    """One row of the generalized sparse kernel; the plain row when no option is on."""
    cdef double coef = 1.0
    cdef const void *u = NULL
    if o.on:
        if o.has_ignore and t == o.ignore_index:
            if gr != NULL:
                memset(gr, 0, c * _itemsize(store))
            return 0.0
        coef = o.one_minus_eps
        if o.class_weight != NULL and 0 <= t < c:
            coef = coef * o.class_weight[t]
        u = o.spread
    return _active.sparse_row[store](xr, c, t, coef, u, o.a, 0.0, scale, gr, work)

cdef inline Py_ssize_t _scale_step(const double[::1] scale, Py_ssize_t rows) except -1:
    if scale.shape[0] == rows:
        return 1
    if scale.shape[0] == 1:
        return 0
    raise ValueError("scale must have one entry per row, or one entry")


def first_invalid_label(const int64_t[::1] labels, Py_ssize_t num_classes):
    """Index of the first label outside ``[0, num_classes)``, or -1 if there is none."""
    cdef Py_ssize_t i, first = -1, n = labels.shape[0]
    cdef int64_t c = num_classes
    with nogil:
        for i in range(n):
            if <uint64_t>labels[i] >= <uint64_t>c:   # negatives wrap to huge values
                first = i
                break
    return first


# --- the families' drivers, by concern ------------------------------------------------------

include "_kernels_sparse.pxi"
include "_kernels_fast.pxi"
include "_kernels_dense.pxi"
include "_kernels_split.pxi"


# --- test hooks and facts -------------------------------------------------------------------

def _vector_math(cnp.ndarray values, cnp.ndarray out, str function):
    if values.dtype != out.dtype or not values.flags.c_contiguous or not out.flags.c_contiguous \
            or values.size != out.size:
        raise ValueError("values and out must be contiguous, of one dtype and size")
    if values.dtype == np.float32:
        (_active.exp_f32 if function == "exp" else _active.log1p_f32)(
            <const float *>cnp.PyArray_DATA(values), <float *>cnp.PyArray_DATA(out), values.size)
    elif values.dtype == np.float64:
        (_active.exp_f64 if function == "exp" else _active.log1p_f64)(
            <const double *>cnp.PyArray_DATA(values), <double *>cnp.PyArray_DATA(out), values.size)
    else:
        raise TypeError("values must be float32 or float64")


def exp_nonpositive(cnp.ndarray values, cnp.ndarray out):
    """The active path's vector exp over contiguous float32/float64 ``values`` <= 0 (for tests)."""
    _vector_math(values, out, "exp")


def log1p_nonnegative(cnp.ndarray values, cnp.ndarray out):
    """The active path's vector log1p over contiguous float32/float64 ``values`` >= 0 (for tests)."""
    _vector_math(values, out, "log1p")


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


def families():
    """The active path's kernel families per storage kind: rows per block, and the most
    classes of rows in lanes (without and with a gradient) and of row batches, sparse and
    dense (beyond: row kernels),
    {"float32": {"block_rows": ..., "lanes_cols": ..., "batch_cols": ...}, ...}."""
    cdef int k
    names = {F16: "float16", F32: "float32", F64: "float64", BF16: "bfloat16"}
    result = {}
    for k in range(FX_KINDS):
        result[names[k]] = {"block_rows": _active.block_rows[k],
                            "lanes_cols": _active.lanes_cols[k],
                            "lanes_grad_cols": _active.lanes_grad_cols[k],
                            "batch_cols": _active.batch_cols[k],
                            "batch_grad_cols": _active.batch_grad_cols[k],
                            "dense_batch_cols": _active.dense_batch_cols}
    return result


def build_info():
    """What this build of the kernels has: the paths, the one in use, OpenMP and threads."""
    return {"path": path(), "paths": paths(), "openmp": bool(fx_have_openmp()),
            "max_threads": fx_max_threads()}
include "_linear_kernels.pxi"
