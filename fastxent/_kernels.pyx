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
                                        void *loss, Py_ssize_t ls, void *work,
                                        Py_ssize_t rows) noexcept nogil
    ctypedef void (*fx_dense_block_fn)(const void *x, Py_ssize_t xs, const void *y,
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
        int dense_batch_cols
        fx_sparse_row_fn sparse_row[FX_KINDS]
        fx_dense_row_fn dense_row[FX_KINDS]
        fx_part_fn part[FX_KINDS]
        fx_grad_finish_fn grad_finish[FX_KINDS]
        fx_sparse_grad_part_fn sparse_grad_part[FX_KINDS]
        fx_dense_sums_part_fn dense_sums_part[FX_KINDS]
        fx_dense_grad_part_fn dense_grad_part[FX_KINDS]
        fx_sparse_block_fn sparse_lanes[FX_KINDS]
        fx_dense_block_fn dense_lanes[FX_KINDS]
        fx_sparse_block_fn sparse_batch[FX_KINDS]
        fx_dense_block_fn dense_batch[FX_KINDS]
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
    if c <= (_active.dense_batch_cols if dense else _active.batch_cols[store]):
        return BATCH
    return ROWS


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


# --- sparse labels ------------------------------------------------------------------------

cdef void _sparse_rows(real *witness, Plan *p, Strided *x, const int64_t *labels, Strided *loss,
                       Strided *grad, const double *scale, Py_ssize_t scale_step,
                       _Scratch scratch, Py_ssize_t first, int n_threads,
                       const Options *o) noexcept nogil:
    cdef Py_ssize_t i, c = x.cols
    cdef real *xbuf = NULL
    cdef real *gbuf = NULL
    cdef double *work = NULL
    cdef void *xr
    cdef void *gr
    cdef double value
    with parallel(num_threads=n_threads):
        xbuf = <real *>_rows_of(scratch, threadid())
        gbuf = xbuf + c
        work = _work_of(scratch, threadid())
        for i in prange(first, x.rows, schedule='static'):
            xr = _row(x, i, p.x_direct, xbuf)
            gr = NULL
            if grad != NULL:
                gr = <void *>(grad.data + i * grad.row_stride) if p.g_direct else <void *>gbuf
            value = _sparse_row(p.store, o, xr, c, labels[i], scale[i * scale_step], gr, work)
            _store(loss.data + i * loss.row_stride, loss.kind, value)
            if grad != NULL and not p.g_direct:
                _scatter(grad, i, <real *>gr)


cdef void _store_block_losses(const Plan *p, Strided *loss, Py_ssize_t i0, Py_ssize_t rows,
                              const char *values) noexcept nogil:
    """A block's ``rows`` losses, written by the kernel in the compute kind, into ``loss``: by
    the kernels' own conversion where ``loss`` is of the logits' kind (float16's in hardware)."""
    cdef Py_ssize_t k, item = _itemsize(p.kind), out_item = _itemsize(loss.kind)
    if loss.kind == p.store and loss.row_stride % out_item == 0:
        _active.put[loss.kind](values, rows, loss.data + i0 * loss.row_stride,
                               loss.row_stride // out_item)
        return
    for k in range(rows):
        _store(loss.data + (i0 + k) * loss.row_stride, loss.kind, _load(values + k * item, p.kind))


cdef void _sparse_blocks(Plan *p, Strided *x, const int64_t *labels, Strided *loss,
                         Strided *grad, const double *scale, Py_ssize_t scale_step,
                         _Scratch scratch) noexcept nogil:
    cdef Py_ssize_t b, i0, rows, lanes = p.lanes, item = _itemsize(p.store), gs = 0
    cdef Py_ssize_t xs = x.row_stride // item
    cdef bint loss_direct = _direct(loss, p.kind)
    cdef Py_ssize_t ls = loss.row_stride // _itemsize(p.kind) if loss_direct else 1
    cdef fx_sparse_block_fn block = (_active.sparse_lanes[p.store] if p.family == LANES
                                     else _active.sparse_batch[p.store])
    cdef char *lossbuf = NULL
    cdef void *work = NULL
    cdef char *out
    cdef void *g0
    if grad != NULL:
        gs = grad.row_stride // item
    with parallel(num_threads=p.threads):
        lossbuf = _rows_of(scratch, threadid())
        work = <void *>_work_of(scratch, threadid())
        for b in prange(p.blocks, schedule='static'):
            i0 = b * lanes
            rows = min(lanes, x.rows - i0)
            g0 = NULL
            if grad != NULL:
                g0 = <void *>(grad.data + i0 * grad.row_stride)
            out = loss.data + i0 * loss.row_stride if loss_direct else lossbuf
            block(x.data + i0 * x.row_stride, xs, x.cols, labels + i0, scale + i0 * scale_step,
                  scale_step, g0, gs, out, ls, work, rows)
            if not loss_direct:
                _store_block_losses(p, loss, i0, rows, lossbuf)


cdef void _split_partial(Plan *p, const char *xr, const char *yr, Py_ssize_t c, double a,
                         double b, char *e, double *work, fx_partial *parts,
                         fx_partial *row) noexcept nogil:
    """A long row's partial: its parts on all threads, combined in order, as the row
    kernels do on one thread (fx_kernels_impl.h's row_partial), so the bits are the same.
    ``e`` (or NULL) receives the exps, in the compute kind."""
    cdef Py_ssize_t k, start, length, chunk = _chunk_of(p.kind)
    cdef Py_ssize_t item = _itemsize(p.store), citem = _itemsize(p.kind)
    for k in prange(_parts(c), num_threads=p.split_threads, schedule='static'):
        start = k * FX_PART
        length = min(<Py_ssize_t>FX_PART, c - start)
        _active.part[p.store](xr + start * item, yr + start * item if yr != NULL else NULL,
                              length, a, b, e + start * citem if e != NULL else NULL,
                              work + start // chunk if e != NULL else NULL, &parts[k])
    fx_partial_empty(row)
    for k in range(_parts(c)):
        fx_combine_partial(row, &parts[k])
    fx_partial_finish(row)


cdef void _split_finish(Plan *p, char *gr, const char *e, const char *yr, Py_ssize_t c,
                        double a, double b, const double *work, double m, double scale,
                        double total, double r) noexcept nogil:
    cdef Py_ssize_t k, start, length, chunk = _chunk_of(p.kind)
    cdef Py_ssize_t item = _itemsize(p.store), citem = _itemsize(p.kind)
    for k in prange(_parts(c), num_threads=p.split_threads, schedule='static'):
        start = k * FX_PART
        length = min(<Py_ssize_t>FX_PART, c - start)
        _active.grad_finish[p.store](gr + start * item, e + start * citem,
                                     yr + start * item if yr != NULL else NULL, length, a, b,
                                     work + start // chunk, m, scale, total, r)


cdef void _sparse_split(Plan *p, Strided *x, const int64_t *labels, Strided *loss,
                        Strided *grad, const double *scale, Py_ssize_t scale_step,
                        fx_partial *parts, double *work) noexcept nogil:
    """Few long rows: each row's parts run on several threads (sparse_row's steps)."""
    cdef Py_ssize_t i, t, c = x.cols
    cdef fx_partial row
    cdef double xt, sc, value
    cdef const char *xr
    cdef char *gr
    cdef char *e
    for i in range(x.rows):
        xr = x.data + i * x.row_stride
        gr = grad.data + i * grad.row_stride if grad != NULL else NULL
        e = <char *>_exps_of(p, gr, work, c)
        t = labels[i]
        sc = scale[i * scale_step]
        if t < 0 or t >= c:
            value = _sparse_row(p.store, &_NO_OPTIONS, xr, c, t, sc, gr, work)
            _store(loss.data + i * loss.row_stride, loss.kind, value)
            continue
        xt = _load(xr + t * _itemsize(p.store), p.store)
        _split_partial(p, xr, NULL, c, 0.0, 0.0, e, work, parts, &row)
        if gr != NULL:
            _split_finish(p, gr, e, NULL, c, 0.0, 0.0, work, row.m, sc, 1.0, row.r)
            _store(gr + t * _itemsize(p.store), p.store, fx_sparse_target_grad(row.m, row.r, xt, sc))
        _store(loss.data + i * loss.row_stride, loss.kind, fx_sparse_loss(row.m, row.r, xt))


def sparse_rows(cnp.ndarray logits, const int64_t[::1] labels, cnp.ndarray loss,
                cnp.ndarray grad, const double[::1] scale, n_threads=None, *,
                ignore_index=None, const double[::1] class_weight=None,
                double label_smoothing=0.0):
    """Per-row sparse cross-entropy, PyTorch's options included, in one pass per row.

    Parameters
    ----------
    logits : ndarray, shape (N, C), float16/32/64 or bfloat16, any strides
    labels : ndarray, shape (N,), int64, contiguous, each in [0, C) (or ``ignore_index``)
    loss : ndarray, shape (N,), float16/32/64 or bfloat16, written with
        ``a_i ((1 - eps) w[t] (lse - x_t) + eps / C sum_j w_j (lse - x_j))``
    grad : ndarray or None, shape (N, C), written with ``scale`` times the gradient of
        that loss, ``a_i (k p - (1 - eps) w[t] onehot - eps / C w)``; may be ``logits``
    scale : ndarray, float64, shape (N,) or (1,)
    n_threads : int or None
    ignore_index : int or None
        Rows with this label get loss 0 and a zero gradient (``a_i = 0``).
    class_weight : ndarray, float64, shape (C,), or None (all 1)
    label_smoothing : float, ``eps`` in [0, 1]
    """
    cdef Strided x = _strided(logits)
    cdef Strided out = _strided(loss)
    cdef Strided g
    cdef Strided *gp = NULL
    cdef Py_ssize_t step = _scale_step(scale, x.rows)
    cdef Plan p
    cdef Options o = _NO_OPTIONS
    cdef cnp.ndarray spread = None
    if grad is not None:
        g = _strided(grad)
        gp = &g
    p = _plan(&x, NULL, gp, NULL, n_threads)
    if ignore_index is not None or class_weight is not None or label_smoothing != 0.0:
        if class_weight is not None and class_weight.shape[0] != x.cols:
            raise ValueError("class_weight must have one entry per class")
        o.on = True
        o.has_ignore = ignore_index is not None
        o.ignore_index = ignore_index if o.has_ignore else 0
        o.class_weight = &class_weight[0] if class_weight is not None and x.cols else NULL
        o.one_minus_eps = 1.0 - label_smoothing
        # the generalized row is a row kernel; its spread rides in the labels' place of the
        # pass, in the kind of the rows: a half kind's rows are formed in the compute kind
        _rows_only(&p, &x, NULL, gp, NULL, label_smoothing != 0.0)
        if label_smoothing != 0.0:
            spread = (np.ones(x.cols) if class_weight is None else np.asarray(class_weight)
                      ).astype(np.float64 if p.kind == F64 else np.float32)
            o.spread = <const char *>cnp.PyArray_DATA(spread)
            o.a = label_smoothing / x.cols
    _run_sparse(&p, &x, &labels[0] if x.rows else NULL, &out, gp, &scale[0], step, &o)


cdef int _run_sparse(Plan *plan, Strided *x, const int64_t *labels, Strided *out, Strided *gp,
                     const double *scale, Py_ssize_t step, const Options *o) except -1:
    """The planned sparse call: split rows, blocks of rows (in lanes or batches), then row
    kernels."""
    cdef Plan p = plan[0]
    cdef _Scratch scratch
    cdef Py_ssize_t first = 0
    if x.rows == 0:
        return 0
    if p.split_threads > 1:
        scratch = _Scratch(1, _parts(x.cols) * sizeof(fx_partial), fx_work_size(x.cols))
        with nogil:
            _sparse_split(&p, x, labels, out, gp, scale, step,
                          <fx_partial *>_rows_of(scratch, 0), _work_of(scratch, 0))
        return 0
    scratch = _Scratch(max(p.threads, 1), max(2 * x.cols * _itemsize(p.kind), MAX_LANES * 8),
                       _block_work(&p, x.cols, gp != NULL))
    with nogil:
        if p.family != ROWS:
            _sparse_blocks(&p, x, labels, out, gp, scale, step, scratch)
            first = x.rows
        if first < x.rows:
            if p.kind == F64:
                _sparse_rows(<double *>NULL, &p, x, labels, out, gp, scale, step,
                             scratch, first, p.threads if first == 0 else 1, o)
            else:
                _sparse_rows(<float *>NULL, &p, x, labels, out, gp, scale, step,
                             scratch, first, p.threads if first == 0 else 1, o)
    return 0


# --- whole calls: the fast path of small plain calls ------------------------------------------

cdef enum:
    # codes of fast_sparse's reduction (fastxent._core.REDUCTION_CODES)
    PER_ROW = -1
    R_NONE = 0
    R_SUM = 1
    R_MEAN = 2
    R_OVER_BATCH = 3
    R_BY_NONZERO = 4


ctypedef fused label_t:
    int8_t
    uint8_t
    int16_t
    uint16_t
    int32_t
    uint32_t
    int64_t
    uint64_t


cdef Py_ssize_t _labels_in_range(const label_t *src, int64_t *dst, Py_ssize_t n,
                                 Py_ssize_t c) noexcept nogil:
    """Copy labels into ``dst`` (when not NULL) while checking each is in [0, c); returns
    the index of the first one outside, or -1."""
    cdef Py_ssize_t i
    for i in range(n):
        if label_t is int8_t or label_t is int16_t or label_t is int32_t or label_t is int64_t:
            if src[i] < 0 or src[i] >= c:
                return i
        else:
            if src[i] >= <uint64_t>c:
                return i
        if dst != NULL:
            dst[i] = <int64_t>src[i]
    return -1


cdef object _int64_labels(cnp.ndarray t, Py_ssize_t c):
    """An int64 array of labels ``t`` (itself when it is one), all in [0, c); None when a
    label is out of range or ``t`` is not of an integer type."""
    cdef int size = cnp.PyArray_ITEMSIZE(t)
    cdef cnp.npy_intp n = cnp.PyArray_SIZE(t)
    cdef Py_ssize_t bad
    cdef cnp.ndarray copy = None
    cdef int64_t *dst = NULL
    cdef const void *src = cnp.PyArray_DATA(t)
    if not cnp.PyArray_ISINTEGER(t):
        return None
    if not (cnp.PyArray_ISSIGNED(t) and size == 8):
        copy = cnp.PyArray_EMPTY(1, &n, cnp.NPY_INT64, 0)
        dst = <int64_t *>cnp.PyArray_DATA(copy)
    if cnp.PyArray_ISSIGNED(t):
        if size == 1:
            bad = _labels_in_range(<const int8_t *>src, dst, n, c)
        elif size == 2:
            bad = _labels_in_range(<const int16_t *>src, dst, n, c)
        elif size == 4:
            bad = _labels_in_range(<const int32_t *>src, dst, n, c)
        else:
            bad = _labels_in_range(<const int64_t *>src, dst, n, c)
    else:
        if size == 1:
            bad = _labels_in_range(<const uint8_t *>src, dst, n, c)
        elif size == 2:
            bad = _labels_in_range(<const uint16_t *>src, dst, n, c)
        elif size == 4:
            bad = _labels_in_range(<const uint32_t *>src, dst, n, c)
        else:
            bad = _labels_in_range(<const uint64_t *>src, dst, n, c)
    if bad >= 0:
        return None
    return t if copy is None else copy


cdef double _pairwise_sum(const double *a, Py_ssize_t n, Py_ssize_t step) noexcept nogil:
    """NumPy's pairwise summation of n doubles ``step`` apart (0: one value n times), so that
    a denominator here is np.sum's, bit for bit (tests/test_fast_path.py checks it)."""
    cdef double r[8]
    cdef double res
    cdef Py_ssize_t i, j, half
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[i * step]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j * step]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[(i + j) * step]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i * step]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise_sum(a, half, step) + _pairwise_sum(a + half * step, n - half, step)


cdef extern from "numpy/ndarraytypes.h":
    enum: NPY_HALF
    enum: NPY_USERDEF


cdef int _bfloat16_type = -1   # ml_dtypes.bfloat16's type number, once one is seen


cdef int _plain_kind(object a):
    """The kind of an exact, C-contiguous, aligned, native float ndarray, or -1."""
    global _bfloat16_type
    cdef int type_num
    if not (cnp.PyArray_CheckExact(a) and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>a)):
        return -1
    type_num = cnp.PyArray_TYPE(<cnp.ndarray>a)
    if type_num == cnp.NPY_FLOAT:
        return F32
    if type_num == cnp.NPY_DOUBLE:
        return F64
    if type_num == NPY_HALF:
        return F16
    if type_num == _bfloat16_type:
        return BF16
    if _bfloat16_type < 0 and type_num >= NPY_USERDEF and _kind_of(<cnp.ndarray>a) == BF16:
        _bfloat16_type = type_num
        return BF16
    return -1


cdef inline bint _apart(cnp.ndarray a, object b) noexcept:
    """Whether contiguous ``a`` shares no byte with ndarray ``b`` (None: nothing)."""
    cdef char *a0
    cdef char *b0
    if b is None:
        return True
    a0 = cnp.PyArray_BYTES(a)
    b0 = cnp.PyArray_BYTES(<cnp.ndarray>b)
    return (a0 + cnp.PyArray_NBYTES(a) <= b0 or b0 + cnp.PyArray_NBYTES(<cnp.ndarray>b) <= a0
            or cnp.PyArray_NBYTES(a) == 0 or cnp.PyArray_NBYTES(<cnp.ndarray>b) == 0)


cdef bint _plain_output(object a, int type_num, int nd, const cnp.npy_intp *shape) noexcept:
    """Whether ``a`` is a writeable, C-contiguous, aligned ndarray of exactly this type and
    shape (the fast path writes only into those)."""
    cdef int k
    if not (cnp.PyArray_CheckExact(a) and cnp.PyArray_ISCARRAY(<cnp.ndarray>a)
            and cnp.PyArray_TYPE(<cnp.ndarray>a) == type_num
            and cnp.PyArray_NDIM(<cnp.ndarray>a) == nd):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(<cnp.ndarray>a)[k] != shape[k]:
            return False
    return True


def fast_sparse(object logits, object labels, bint want_grad, int reduction, object weights,
                object out=None, object grad_out=None, object n_threads=None):
    """A whole call of the sparse loss, for the arrays and options most calls pass; None
    otherwise.

    Taken: exactly ``numpy.ndarray`` inputs, C-contiguous, aligned and native: float16,
    bfloat16, float32 or float64 logits with at least one class; labels of any integer type
    and the batch's shape, all in range; ``weights`` a Python number or an array of the
    labels' shape; ``out`` and ``grad_out`` arrays of the result's shape and the logits'
    dtype that overlap no input (``grad_out`` may be the logits themselves); ``n_threads``
    None, -1 or a positive int. Anything else (and a zero denominator) returns None, and the
    caller takes the general path, which checks, converts and raises as documented.
    ``reduction`` is -1 for ``nn``'s per-row loss in the logits' dtype, else a code of
    ``REDUCTION_CODES``. Returns the loss, or (loss, gradient) with ``want_grad``: the same
    values as the general path.
    """
    cdef cnp.ndarray x, t, rows_loss, w = None, grad = None, scale
    cdef Strided xs, ls, gs
    cdef Strided *gp = NULL
    cdef Plan p
    cdef int type_num, nd, k, kind
    cdef Py_ssize_t i, c, step = 0
    cdef cnp.npy_intp n
    cdef const double *wp
    cdef double weight = 1.0, denominator = 1.0, total = 0.0, one_scale
    cdef cnp.npy_intp *shape
    cdef object index
    kind = _plain_kind(logits)
    if kind < 0 or not (cnp.PyArray_CheckExact(labels) and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>labels)
                        and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>labels)):
        return None
    x = <cnp.ndarray>logits
    t = <cnp.ndarray>labels
    type_num = cnp.PyArray_TYPE(x)
    nd = cnp.PyArray_NDIM(x)
    if nd < 1 or cnp.PyArray_NDIM(t) != nd - 1:
        return None
    shape = cnp.PyArray_DIMS(x)
    for k in range(nd - 1):
        if cnp.PyArray_DIMS(t)[k] != shape[k]:
            return None
    c = shape[nd - 1]
    n = cnp.PyArray_SIZE(t)
    if c == 0 or (grad_out is not None and not want_grad):
        return None
    if n_threads is not None and not (type(n_threads) is int and (n_threads >= 1 or n_threads == -1)):
        return None
    index = _int64_labels(t, c)
    if index is None:
        return None
    # the weights: one number, or one per row
    if type(weights) is float or type(weights) is int:
        weight = weights
    elif (cnp.PyArray_CheckExact(weights) and cnp.PyArray_NDIM(<cnp.ndarray>weights) == nd - 1
          and cnp.PyArray_SIZE(<cnp.ndarray>weights) == n
          and (cnp.PyArray_ISINTEGER(<cnp.ndarray>weights) or cnp.PyArray_ISFLOAT(<cnp.ndarray>weights))
          and reduction != PER_ROW):
        for k in range(nd - 1):
            if cnp.PyArray_DIMS(<cnp.ndarray>weights)[k] != shape[k]:
                return None
        w = <cnp.ndarray>weights
        if not (cnp.PyArray_TYPE(w) == cnp.NPY_DOUBLE and cnp.PyArray_ISCARRAY_RO(w)):
            w = np.ascontiguousarray(weights, dtype=np.float64)
        step = 1
    else:
        return None
    if w is None:
        wp = &weight
    else:
        wp = <const double *>cnp.PyArray_DATA(w)
    if reduction == R_MEAN:
        denominator = _pairwise_sum(wp, n, step)
    elif reduction == R_OVER_BATCH:
        denominator = n
    elif reduction == R_BY_NONZERO:
        denominator = 0
        for i in range(n):
            denominator += wp[i * step] != 0
    if reduction != PER_ROW and not denominator != 0:
        return None
    # the outputs: the caller's where given and plain, else new
    if grad_out is not None:
        if not (_plain_output(grad_out, type_num, nd, shape) and _apart(<cnp.ndarray>grad_out, t)
                and (grad_out is logits or _apart(<cnp.ndarray>grad_out, x))):
            return None
        grad = <cnp.ndarray>grad_out
    elif want_grad:
        grad = cnp.PyArray_EMPTY(nd, shape, type_num, 0)
    if out is not None:
        if not (_plain_output(out, type_num, nd - 1 if reduction <= R_NONE else 0, shape)
                and _apart(<cnp.ndarray>out, x) and _apart(<cnp.ndarray>out, t)
                and (grad_out is None or _apart(<cnp.ndarray>out, grad_out))):
            return None
    if reduction == PER_ROW and out is not None:
        rows_loss = <cnp.ndarray>out
    else:   # nn's loss in the logits' dtype; the losses' per-row losses in the compute type
        rows_loss = cnp.PyArray_EMPTY(nd - 1, shape, type_num if reduction == PER_ROW else
                                      (cnp.NPY_DOUBLE if kind == F64 else cnp.NPY_FLOAT), 0)
    xs.data, xs.rows, xs.cols, xs.kind = cnp.PyArray_BYTES(x), n, c, kind
    xs.col_stride = _itemsize(kind)
    xs.row_stride = c * xs.col_stride
    ls.data, ls.rows, ls.cols, ls.kind = cnp.PyArray_BYTES(rows_loss), n, 1, _kind_of(rows_loss)
    ls.row_stride, ls.col_stride = _itemsize(ls.kind), 0
    if grad is not None:
        gs = xs
        gs.data = cnp.PyArray_BYTES(grad)
        gp = &gs
    p = _plan(&xs, NULL, gp, NULL, None if n_threads == -1 else n_threads)
    if reduction == PER_ROW or w is None:
        one_scale = 1.0 if reduction == PER_ROW else weight / denominator
        _run_sparse(&p, &xs, <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>index), &ls, gp,
                    &one_scale, 0, &_NO_OPTIONS)
    else:   # w_i / denominator, as the general path's Weighting.row_scale
        scale = cnp.PyArray_EMPTY(1, &n, cnp.NPY_DOUBLE, 0)
        for i in range(n):
            (<double *>cnp.PyArray_DATA(scale))[i] = wp[i] / denominator
        _run_sparse(&p, &xs, <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>index), &ls, gp,
                    <const double *>cnp.PyArray_DATA(scale), 1, &_NO_OPTIONS)
    if reduction == PER_ROW:
        result = rows_loss if out is not None or nd > 1 else rows_loss[()]
    elif reduction == R_NONE:
        result = out if out is not None else cnp.PyArray_EMPTY(nd - 1, shape, type_num, 0)
        for i in range(n):
            _store(cnp.PyArray_BYTES(<cnp.ndarray>result) + i * _itemsize(kind), kind,
                   _load(ls.data + i * ls.row_stride, ls.kind) * wp[i * step])
    else:
        for i in range(n):
            total += _load(ls.data + i * ls.row_stride, ls.kind) * wp[i * step]
        if out is not None:
            out[()] = total / denominator
            result = out
        else:
            result = x.dtype.type(total / denominator)
    return (result, grad) if want_grad else result


# --- dense labels ---------------------------------------------------------------------------

cdef struct MaskView:
    const char *data           # bytes of a boolean (N, C) array, or NULL
    Py_ssize_t row_stride
    Py_ssize_t col_stride


cdef void _dense_rows(real *witness, Plan *p, Strided *x, Strided *y, Strided *loss,
                      Strided *grad, Strided *ygrad, double a, double b, const double *scale,
                      Py_ssize_t scale_step, _Scratch scratch, Py_ssize_t first,
                      int n_threads, const double *u, const MaskView *mask) noexcept nogil:
    """Row kernels over rows first.. The labels a y + b are formed in the thread's scratch
    row when class weights u multiply them or a mask of entries removes some (a masked
    logit becomes -inf, its label 0; a row with none left is 0): the caller's arrays are
    never written. Those rows are in the compute kind (the plan's store, _rows_only)."""
    cdef Py_ssize_t i, j, c = x.cols, kept
    cdef const char *yp
    cdef const char *xp_
    cdef const char *mp
    cdef real *xbuf = NULL
    cdef real *ybuf = NULL
    cdef real *gbuf = NULL
    cdef real *gybuf = NULL
    cdef double *work = NULL
    cdef void *xr
    cdef void *yr
    cdef void *gr
    cdef void *gyr
    cdef real *gyk
    cdef double value
    with parallel(num_threads=n_threads):
        xbuf = <real *>_rows_of(scratch, threadid())
        ybuf = xbuf + c
        gbuf = ybuf + c
        gybuf = gbuf + c
        work = _work_of(scratch, threadid())
        for i in prange(first, x.rows, schedule='static'):
            xr = _row(x, i, p.x_direct, xbuf)
            gr = NULL
            gyr = NULL
            if grad != NULL:
                gr = <void *>(grad.data + i * grad.row_stride) if p.g_direct else <void *>gbuf
            if ygrad != NULL:
                gyr = <void *>(ygrad.data + i * ygrad.row_stride) if p.gy_direct else <void *>gybuf
            if u != NULL or mask.data != NULL:
                # the labels u (a y + b), and with a mask the kept logits, in scratch rows
                yp = y.data + i * y.row_stride
                mp = mask.data + i * mask.row_stride if mask.data != NULL else NULL
                if mp != NULL:
                    xp_ = x.data + i * x.row_stride
                    xr = <void *>xbuf
                kept = 0
                for j in range(c):
                    if mp != NULL and not mp[j * mask.col_stride]:
                        xbuf[j] = -INFINITY
                        ybuf[j] = 0
                        continue
                    kept = 1
                    if mp != NULL:
                        xbuf[j] = <real>_load(xp_ + j * x.col_stride, x.kind)
                    ybuf[j] = <real>((u[j] if u != NULL else 1.0)
                                     * (a * _load(yp + j * y.col_stride, y.kind) + b))
                if kept:
                    value = _active.dense_row[p.store](xr, ybuf, c, 1.0, 0.0,
                                                       scale[i * scale_step], gr, gyr, work)
                else:
                    value = 0.0
                    if gr != NULL:
                        memset(gr, 0, c * sizeof(real))
                    if gyr != NULL:
                        memset(gyr, 0, c * sizeof(real))
                if gyr != NULL and kept:   # d loss / d y_j = scale a u_j (lse - x_j), 0 masked
                    gyk = <real *>gyr
                    for j in range(c):
                        gyk[j] = <real>(gyk[j] * (a * (u[j] if u != NULL else 1.0))
                                        if mp == NULL or mp[j * mask.col_stride] else 0.0)
            else:
                yr = _row(y, i, p.y_direct, ybuf)
                value = _active.dense_row[p.store](xr, yr, c, a, b, scale[i * scale_step], gr,
                                                   gyr, work)
            _store(loss.data + i * loss.row_stride, loss.kind, value)
            if grad != NULL and not p.g_direct:
                _scatter(grad, i, <real *>gr)
            if ygrad != NULL and not p.gy_direct:
                _scatter(ygrad, i, <real *>gyr)


cdef void _dense_blocks(Plan *p, Strided *x, Strided *y, Strided *loss, Strided *grad,
                        Strided *ygrad, double a, double b, const double *scale,
                        Py_ssize_t scale_step, _Scratch scratch) noexcept nogil:
    cdef Py_ssize_t b_, i0, rows, lanes = p.lanes, item = _itemsize(p.store)
    cdef Py_ssize_t xs = x.row_stride // item, ys = y.row_stride // item
    cdef Py_ssize_t gs = 0, gys = 0
    cdef bint loss_direct = _direct(loss, p.kind)
    cdef Py_ssize_t ls = loss.row_stride // _itemsize(p.kind) if loss_direct else 1
    cdef fx_dense_block_fn block = (_active.dense_lanes[p.store] if p.family == LANES
                                    else _active.dense_batch[p.store])
    cdef char *lossbuf = NULL
    cdef void *work = NULL
    cdef char *out
    cdef void *g0
    cdef void *gy0
    if grad != NULL:
        gs = grad.row_stride // item
    if ygrad != NULL:
        gys = ygrad.row_stride // item
    with parallel(num_threads=p.threads):
        lossbuf = _rows_of(scratch, threadid())
        work = <void *>_work_of(scratch, threadid())
        for b_ in prange(p.blocks, schedule='static'):
            i0 = b_ * lanes
            rows = min(lanes, x.rows - i0)
            g0 = NULL
            gy0 = NULL
            if grad != NULL:
                g0 = <void *>(grad.data + i0 * grad.row_stride)
            if ygrad != NULL:
                gy0 = <void *>(ygrad.data + i0 * ygrad.row_stride)
            out = loss.data + i0 * loss.row_stride if loss_direct else lossbuf
            block(x.data + i0 * x.row_stride, xs, y.data + i0 * y.row_stride, ys, x.cols, a, b,
                  scale + i0 * scale_step, scale_step, g0, gs, gy0, gys, out, ls, work, rows)
            if not loss_direct:
                _store_block_losses(p, loss, i0, rows, lossbuf)


cdef void _dense_split(Plan *p, Strided *x, Strided *y, Strided *loss, Strided *grad,
                       Strided *ygrad, double a, double b, const double *scale,
                       Py_ssize_t scale_step, fx_partial *parts, double *work) noexcept nogil:
    """Few long rows: each row's parts run on several threads (dense_row's steps)."""
    cdef Py_ssize_t i, k, start, length, c = x.cols, item = _itemsize(p.store)
    cdef fx_partial row
    cdef double sc, log_s, ignored_y, ignored_yx
    cdef const char *xr
    cdef const char *yr
    cdef char *gr
    cdef char *gyr
    cdef char *stored
    for i in range(x.rows):
        xr = x.data + i * x.row_stride
        yr = y.data + i * y.row_stride
        gr = grad.data + i * grad.row_stride if grad != NULL else NULL
        gyr = ygrad.data + i * ygrad.row_stride if ygrad != NULL else NULL
        # with the labels' gradient the exps are not kept: gy needs the logits, which g may be
        stored = <char *>_exps_of(p, gr, work, c) if gyr == NULL else NULL
        sc = scale[i * scale_step]
        _split_partial(p, xr, yr, c, a, b, stored, work, parts, &row)
        log_s = log1p(row.r)
        if gyr != NULL:
            for k in prange(_parts(c), num_threads=p.split_threads, schedule='static'):
                start = k * FX_PART
                length = min(<Py_ssize_t>FX_PART, c - start)
                _active.dense_sums_part[p.store](xr + start * item, yr + start * item, length,
                                                 row.m, a, b, sc * a, log_s, gyr + start * item,
                                                 &ignored_y, &ignored_yx)
        if stored != NULL:
            _split_finish(p, gr, stored, yr, c, a, b, work, row.m, sc, row.sy, row.r)
        elif gr != NULL:
            for k in prange(_parts(c), num_threads=p.split_threads, schedule='static'):
                start = k * FX_PART
                length = min(<Py_ssize_t>FX_PART, c - start)
                _active.dense_grad_part[p.store](xr + start * item, yr + start * item, length,
                                                 row.m, a, b, sc, row.sy, row.r,
                                                 gr + start * item)
        _store(loss.data + i * loss.row_stride, loss.kind, fx_dense_loss(row.sy, log_s, row.syx))


def dense_rows(cnp.ndarray logits, cnp.ndarray labels, cnp.ndarray loss, cnp.ndarray grad,
               cnp.ndarray labels_grad, double a, double b, const double[::1] scale,
               n_threads=None, *, const double[::1] class_weight=None, cnp.ndarray mask=None):
    """Per-row dense cross-entropy with labels ``a * labels + b`` (times ``class_weight``,
    PyTorch's ``weight`` for probability targets, when given).

    Parameters
    ----------
    logits : ndarray, shape (N, C), float16/32/64 or bfloat16, any strides
    labels : ndarray, shape (N, C), of any of those dtypes, any strides (0 for broadcast)
    loss : ndarray, shape (N,), written
    grad : ndarray or None, shape (N, C), written with
        ``scale * (p * sum(y') - y')``; may be ``logits`` itself
    labels_grad : ndarray or None, shape (N, C), written with ``scale * a * (lse - x)``
        (times ``class_weight``)
    a, b : float
    scale : ndarray, float64, shape (N,) or (1,)
    n_threads : int or None
    class_weight : ndarray, float64, shape (C,), or None
    mask : ndarray of bool, shape (N, C), any strides, or None
        Entries to keep: a masked logit is left out of the normalizer and its label out of
        the sums; a row with no entry kept has loss 0 and zero gradients.
    """
    cdef Strided x = _strided(logits)
    cdef Strided y = _strided(labels)
    cdef Strided out = _strided(loss)
    cdef Strided g, gy
    cdef Strided *gp = NULL
    cdef Strided *gyp = NULL
    cdef Py_ssize_t step = _scale_step(scale, x.rows)
    cdef Plan p
    cdef _Scratch scratch
    cdef Py_ssize_t first = 0
    if grad is not None:
        g = _strided(grad)
        gp = &g
    if labels_grad is not None:
        gy = _strided(labels_grad)
        gyp = &gy
    cdef const double *u = NULL
    cdef MaskView m = MaskView(NULL, 0, 0)
    p = _plan(&x, &y, gp, gyp, n_threads)
    if mask is not None:
        if mask.dtype != np.bool_ or mask.ndim != 2 or mask.shape[0] != x.rows \
                or mask.shape[1] != x.cols:
            raise ValueError("mask must be a boolean array of the logits' shape")
        m = MaskView(cnp.PyArray_BYTES(mask), mask.strides[0], mask.strides[1])
    if class_weight is not None:
        if class_weight.shape[0] != x.cols:
            raise ValueError("class_weight must have one entry per class")
        if x.cols:
            u = &class_weight[0]
    if class_weight is not None or mask is not None:
        # the labels (and masked logits) are formed a row at a time, in the compute kind
        _rows_only(&p, &x, &y, gp, gyp, True)
    if x.rows == 0 or x.cols == 0:
        return
    if p.split_threads > 1:
        scratch = _Scratch(1, _parts(x.cols) * sizeof(fx_partial), fx_work_size(x.cols))
        with nogil:
            _dense_split(&p, &x, &y, &out, gp, gyp, a, b, &scale[0], step,
                         <fx_partial *>_rows_of(scratch, 0), _work_of(scratch, 0))
        return
    scratch = _Scratch(max(p.threads, 1), max(4 * x.cols * _itemsize(p.kind), MAX_LANES * 8),
                       _block_work(&p, x.cols, gp != NULL))
    with nogil:
        if p.family != ROWS:
            _dense_blocks(&p, &x, &y, &out, gp, gyp, a, b, &scale[0], step, scratch)
            first = x.rows
        if first < x.rows:
            if p.kind == F64:
                _dense_rows(<double *>NULL, &p, &x, &y, &out, gp, gyp, a, b, &scale[0], step,
                            scratch, first, p.threads if first == 0 else 1, u, &m)
            else:
                _dense_rows(<float *>NULL, &p, &x, &y, &out, gp, gyp, a, b, &scale[0], step,
                            scratch, first, p.threads if first == 0 else 1, u, &m)


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


# --- partials for a class axis split across blocks (the Dask backend) -----------------------
#
# A block holds every row of some rows but only a slice of their classes. These
# run serially within a block (Dask runs blocks in parallel) and use the same
# per-part kernels and combine rule as a whole row.

cdef void _partials(real *witness, Strided *x, double *m_out, double *r_out,
                    real *buf) noexcept nogil:
    cdef Py_ssize_t i, part, c = x.cols
    cdef int store = _storage(x, NULL, NULL, NULL)
    cdef Py_ssize_t item = _itemsize(store)
    cdef bint direct = _direct(x, store)
    cdef fx_partial row, piece
    cdef const char *xr
    for i in range(x.rows):
        xr = <const char *>_row(x, i, direct, buf)
        fx_partial_empty(&row)
        for part in range(_parts(c)):
            _active.part[store](xr + part * FX_PART * item, NULL,
                                min(<Py_ssize_t>FX_PART, c - part * FX_PART), 0.0, 0.0, NULL,
                                NULL, &piece)
            fx_combine_partial(&row, &piece)
        m_out[i] = row.m
        r_out[i] = row.r


def row_partials(cnp.ndarray logits, double[::1] m_out, double[::1] r_out):
    """The partial normalizer (m, r) of each row of a block of logits (N, C_block).

    ``sum(exp(x - m)) = 1 + r`` over the block's entries; (-inf, -1) when they are
    all -inf. Combine blocks with the log-sum-exp rule (``fastxent._lse``).
    """
    cdef Strided x = _strided(logits)
    cdef _Scratch scratch = _Scratch(1, x.cols * 8 + 8)
    if x.rows == 0:
        return
    with nogil:
        if x.kind == F64:
            _partials(<double *>NULL, &x, &m_out[0], &r_out[0], <double *>scratch.block)
        else:
            _partials(<float *>NULL, &x, &m_out[0], &r_out[0], <float *>scratch.block)


cdef void _sparse_grad_given(real *witness, Strided *x, const double *m, const double *r,
                             const double *xt, const int64_t *local, const double *scale,
                             Strided *g, real *xbuf, real *gbuf) noexcept nogil:
    cdef Py_ssize_t i, t, c = x.cols
    cdef int store = _storage(x, NULL, g, NULL)
    cdef Py_ssize_t item = _itemsize(store)
    cdef bint x_direct = _direct(x, store), g_direct = _direct(g, store)
    cdef void *xr
    cdef char *gr
    for i in range(x.rows):
        xr = _row(x, i, x_direct, xbuf)
        gr = g.data + i * g.row_stride if g_direct else <char *>gbuf
        _active.sparse_grad_part[store](xr, c, m[i], scale[i] / (1.0 + r[i]), gr)
        t = local[i]
        if 0 <= t < c:
            _store(gr + t * item, store, fx_sparse_target_grad(m[i], r[i], xt[i], scale[i]))
        if not g_direct:
            _scatter(g, i, gbuf)


def sparse_grad_given(cnp.ndarray logits, const double[::1] m, const double[::1] r,
                      const double[::1] xt, const int64_t[::1] local_labels,
                      const double[::1] scale, cnp.ndarray grad):
    """``grad = scale * (exp(x - m) / (1 + r) - onehot)`` for a block of classes.

    ``m``, ``r`` are the whole rows' normalizers, ``xt`` their target logits,
    ``local_labels`` the targets' positions in this block (outside [0, C_block):
    the target is in another block). One entry per row for every array.
    """
    cdef Strided x = _strided(logits)
    cdef Strided g = _strided(grad)
    cdef _Scratch scratch = _Scratch(1, 2 * (x.cols * 8 + 8))
    cdef Py_ssize_t half = (x.cols * 8 + 8)
    if x.rows == 0:
        return
    with nogil:
        if x.kind == F64:
            _sparse_grad_given(<double *>NULL, &x, &m[0], &r[0], &xt[0], &local_labels[0],
                               &scale[0], &g, <double *>scratch.block,
                               <double *>(scratch.block + half))
        else:
            _sparse_grad_given(<float *>NULL, &x, &m[0], &r[0], &xt[0], &local_labels[0],
                               &scale[0], &g, <float *>scratch.block,
                               <float *>(scratch.block + half))


cdef void _dense_given(real *witness, Strided *x, Strided *y, const double *m, double a,
                       double b, double *sum_y, double *sum_yx, const double *r,
                       const double *total, const double *scale, Strided *g, real *xbuf,
                       real *ybuf, real *gbuf) noexcept nogil:
    """Sums (when g is NULL) or the gradient (when it is not) of a block of classes."""
    cdef Py_ssize_t i, part, length, c = x.cols
    cdef int store = _storage(x, y, g, NULL)
    cdef Py_ssize_t item = _itemsize(store)
    cdef bint x_direct = _direct(x, store), y_direct = _direct(y, store)
    cdef bint g_direct = _direct(g, store)
    cdef double sy, syx, total_y, total_yx
    cdef const char *xr
    cdef const char *yr
    cdef void *gr
    for i in range(x.rows):
        xr = <const char *>_row(x, i, x_direct, xbuf)
        yr = <const char *>_row(y, i, y_direct, ybuf)
        if g == NULL:
            total_y = 0.0
            total_yx = 0.0
            for part in range(_parts(c)):
                length = min(<Py_ssize_t>FX_PART, c - part * FX_PART)
                _active.dense_sums_part[store](xr + part * FX_PART * item,
                                               yr + part * FX_PART * item, length, m[i], a, b,
                                               0.0, 0.0, NULL, &sy, &syx)
                total_y += sy
                total_yx += syx
            sum_y[i] = total_y
            sum_yx[i] = total_yx
        else:
            gr = <void *>(g.data + i * g.row_stride) if g_direct else <void *>gbuf
            _active.dense_grad_part[store](xr, yr, c, m[i], a, b, scale[i], total[i], r[i], gr)
            if not g_direct:
                _scatter(g, i, gbuf)


cdef int _run_dense_given(Strided *x, Strided *y, const double *m, double a, double b,
                          double *sum_y, double *sum_yx, const double *r, const double *total,
                          const double *scale, Strided *g) except -1:
    """``_dense_given`` in the logits' compute type, with its scratch rows."""
    cdef Py_ssize_t part = x.cols * 8 + 8
    cdef _Scratch scratch = _Scratch(1, 3 * part)
    if x.rows == 0:
        return 0
    with nogil:
        if x.kind == F64:
            _dense_given(<double *>NULL, x, y, m, a, b, sum_y, sum_yx, r, total, scale, g,
                         <double *>scratch.block, <double *>(scratch.block + part),
                         <double *>(scratch.block + 2 * part))
        else:
            _dense_given(<float *>NULL, x, y, m, a, b, sum_y, sum_yx, r, total, scale, g,
                         <float *>scratch.block, <float *>(scratch.block + part),
                         <float *>(scratch.block + 2 * part))
    return 0


def dense_sums_given(cnp.ndarray logits, cnp.ndarray labels, const double[::1] m, double a,
                     double b, double[::1] sum_y, double[::1] sum_yx):
    """Per row of a block of classes: ``sum(y')`` and ``sum over y' != 0 of y' (x - m)``,
    with ``y' = a * labels + b`` and ``m`` the whole rows' max."""
    cdef Strided x = _strided(logits)
    cdef Strided y = _strided(labels)
    if x.rows:
        _run_dense_given(&x, &y, &m[0], a, b, &sum_y[0], &sum_yx[0], NULL, NULL, NULL, NULL)


def dense_grad_given(cnp.ndarray logits, cnp.ndarray labels, const double[::1] m,
                     const double[::1] r, double a, double b, const double[::1] total,
                     const double[::1] scale, cnp.ndarray grad):
    """``grad = scale * (total * p - y')`` per row of a block of classes, from the whole
    rows' normalizers ``(m, r)`` and ``total = sum(y')``: the row kernels' exact form."""
    cdef Strided x = _strided(logits)
    cdef Strided y = _strided(labels)
    cdef Strided g = _strided(grad)
    if x.rows:
        _run_dense_given(&x, &y, &m[0], a, b, NULL, NULL, &r[0], &total[0], &scale[0], &g)


# --- the row math for arrays (fastxent._lse: the split class axis on NumPy chunks) ------------

def combine_normalizers(const double[::1] m1, const double[::1] r1, const double[::1] m2,
                        const double[::1] r2, double[::1] m, double[::1] r):
    """``(m, r)`` = ``fx_combine`` of the partials ``(m1, r1)`` and ``(m2, r2)``, elementwise
    (all of one length; ``m`` and ``r`` may be ``m1`` and ``r1``)."""
    cdef Py_ssize_t i, n = m1.shape[0]
    cdef double mi, ri
    if not (r1.shape[0] == m2.shape[0] == r2.shape[0] == m.shape[0] == r.shape[0] == n):
        raise ValueError("the partials and the outputs must have one length")
    with nogil:
        for i in range(n):
            mi, ri = m1[i], r1[i]
            fx_combine(&mi, &ri, m2[i], r2[i])
            m[i], r[i] = mi, ri


def sparse_row_losses(const double[::1] m, const double[::1] r, const double[::1] xt,
                      double[::1] out):
    """``fx_sparse_loss`` of whole rows' normalizers and target logits, elementwise."""
    cdef Py_ssize_t i, n = m.shape[0]
    if not (r.shape[0] == xt.shape[0] == out.shape[0] == n):
        raise ValueError("m, r, xt and out must have one length")
    with nogil:
        for i in range(n):
            out[i] = fx_sparse_loss(m[i], r[i], xt[i])


def dense_row_losses(const double[::1] r, const double[::1] sum_y, const double[::1] sum_yx,
                     double[::1] out):
    """``fx_dense_loss`` with ``log_s = log1p(r)``, elementwise."""
    cdef Py_ssize_t i, n = r.shape[0]
    if not (sum_y.shape[0] == sum_yx.shape[0] == out.shape[0] == n):
        raise ValueError("r, sum_y, sum_yx and out must have one length")
    with nogil:
        for i in range(n):
            out[i] = fx_dense_loss(sum_y[i], log1p(r[i]), sum_yx[i])


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
                            "dense_batch_cols": _active.dense_batch_cols}
    return result


def build_info():
    """What this build of the kernels has: the paths, the one in use, OpenMP and threads."""
    return {"path": path(), "paths": paths(), "openmp": bool(fx_have_openmp()),
            "max_threads": fx_max_threads()}
include "_linear_kernels.pxi"
