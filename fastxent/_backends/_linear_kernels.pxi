# Included by _kernels.pyx: the linear model's pass over blocks of rows (fastxent.linear).
#
# The rows of X are cut into blocks of ``block_rows``, and the blocks into ``n_slots``
# contiguous runs. Each run (a slot) is worked by one thread at a time: per block, one
# GEMM forms the logits in the thread's buffer, the fused row kernel turns them into the
# losses and (in place) the logits gradient, and GEMMs add that block's share to the slot's
# own coef gradient (and write the block's X gradient). The slots are then summed in slot
# order. The slot count depends on the problem's shape only, never on the thread count, so
# the results are bit for bit the same for any number of threads.
#
# The GEMMs are SciPy's BLAS (scipy.linalg.cython_blas), bound at run time from its
# capsules by use_blas(): a build of fastxent needs no SciPy, and without it
# fastxent.linear keeps its NumPy loop. BLAS is column-major; a row-major (r x c) array is
# a column-major (c x r) one, which is how every call below is written.

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.string cimport memset

ctypedef void (*dgemm_fn)(char *ta, char *tb, int *m, int *n, int *k, double *alpha,
                          double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                          int *ldc) noexcept nogil
ctypedef void (*sgemm_fn)(char *ta, char *tb, int *m, int *n, int *k, float *alpha, float *a,
                          int *lda, float *b, int *ldb, float *beta, float *c,
                          int *ldc) noexcept nogil

cdef dgemm_fn _dgemm = NULL
cdef sgemm_fn _sgemm = NULL
cdef char _N = 78    # BLAS "no transpose"
cdef char _T = 84    # BLAS "transpose"


def use_blas(dgemm, sgemm):
    """Bind the GEMMs of the linear pass: SciPy's ``cython_blas`` capsules."""
    global _dgemm, _sgemm
    _dgemm = <dgemm_fn>PyCapsule_GetPointer(dgemm, PyCapsule_GetName(dgemm))
    _sgemm = <sgemm_fn>PyCapsule_GetPointer(sgemm, PyCapsule_GetName(sgemm))


def have_blas():
    return _dgemm != NULL and _sgemm != NULL


cdef inline void _gemm(real *witness, char ta, char tb, int m, int n, int k, const real *a,
                       int lda, const real *b, int ldb, double beta, real *c,
                       int ldc) noexcept nogil:
    """``c = op(a) @ op(b) + beta * c``, column-major."""
    cdef float one_f = 1.0, beta_f = <float>beta
    cdef double one_d = 1.0, beta_d = beta
    if m == 0 or n == 0:
        return
    if real is float:
        _sgemm(&ta, &tb, &m, &n, &k, &one_f, <float *>a, &lda, <float *>b, &ldb, &beta_f,
               c, &ldc)
    else:
        _dgemm(&ta, &tb, &m, &n, &k, &one_d, <double *>a, &lda, <double *>b, &ldb, &beta_d,
               c, &ldc)


cdef enum XLayout:
    X_ROWS = 0      # dense, each row contiguous (C order or a slice of rows of it)
    X_COLUMNS = 1   # dense, each column contiguous (Fortran order)
    X_CSR = 2       # scipy.sparse CSR: indptr, indices (int64), data


cdef struct LinearJob:
    int layout
    const char *x             # dense data, or CSR data
    Py_ssize_t ldx            # dense: the stride (elements) between rows, or between columns
    const int64_t *indptr
    const int64_t *indices
    Py_ssize_t n, d, c
    const char *coef          # (d, c), C order
    const char *intercept     # (c,) or NULL
    # the loss
    bint dense_labels
    const int64_t *labels     # (n,)
    const char *y             # (n, c), C order, the compute type
    double a, b               # dense labels a * y + b
    Options options
    const double *scale       # w_i / denominator, per row (step 1) or one (step 0)
    Py_ssize_t scale_step
    double *row_loss          # (n,) or NULL
    # the Hessian-vector product
    const double *curvature   # (n,), or NULL for the loss and gradient pass
    const char *v_coef        # (d, c)
    const char *v_intercept   # (c,) or NULL
    # results
    char *slot_coef           # (n_slots, d, c): the slots' coef gradients, summed into slot 0
    double *slot_intercept    # (n_slots, c) or NULL
    double *slot_loss         # (n_slots,)
    char *grad_x              # (n, d), C order, or NULL
    Py_ssize_t block_rows
    Py_ssize_t n_slots
    Py_ssize_t lanes          # rows of the block kernel (in lanes or a batch), or 0
    fx_sparse_block_fn block
    fx_sparse_partial_fn partial
    int row_threads           # > 1: a block's rows split over this many threads (one run)
    double *row_work          # their work space, work_stride doubles each
    Py_ssize_t work_stride


cdef void _block_product(real *witness, const LinearJob *job, Py_ssize_t i0, Py_ssize_t r,
                         const real *w, const real *bias, real *z) noexcept nogil:
    """``z = X[i0:i0 + r] @ w + bias`` ((r, c), C order)."""
    cdef Py_ssize_t c = job.c, i, j, q
    cdef const real *xd = <const real *>job.x
    cdef const real *wrow
    cdef real v
    cdef real *zr
    if job.layout == X_ROWS:
        _gemm(witness, _N, _N, <int>c, <int>r, <int>job.d, w, <int>c, xd + i0 * job.ldx,
              <int>job.ldx, 0.0, z, <int>c)
    elif job.layout == X_COLUMNS:
        _gemm(witness, _N, _T, <int>c, <int>r, <int>job.d, w, <int>c, xd + i0,
              <int>job.ldx, 0.0, z, <int>c)
    else:
        memset(z, 0, r * c * sizeof(real))
        for i in range(r):
            zr = z + i * c
            for q in range(job.indptr[i0 + i], job.indptr[i0 + i + 1]):
                v = xd[q]
                wrow = w + job.indices[q] * c
                for j in range(c):
                    zr[j] += v * wrow[j]
    if bias != NULL:
        for i in range(r):
            zr = z + i * c
            for j in range(c):
                zr[j] += bias[j]


cdef void _accumulate(real *witness, const LinearJob *job, Py_ssize_t i0, Py_ssize_t r,
                      const real *z, real *g_coef, double *g_intercept) noexcept nogil:
    """``g_coef += X[i0:i0 + r].T @ z`` and ``g_intercept += z.sum(axis=0)``."""
    cdef Py_ssize_t c = job.c, i, j, q
    cdef const real *xd = <const real *>job.x
    cdef const real *zr
    cdef real *grow
    cdef real v
    if job.layout == X_ROWS:
        _gemm(witness, _N, _T, <int>c, <int>job.d, <int>r, z, <int>c, xd + i0 * job.ldx,
              <int>job.ldx, 1.0, g_coef, <int>c)
    elif job.layout == X_COLUMNS:
        _gemm(witness, _N, _N, <int>c, <int>job.d, <int>r, z, <int>c, xd + i0,
              <int>job.ldx, 1.0, g_coef, <int>c)
    else:
        for i in range(r):
            zr = z + i * c
            for q in range(job.indptr[i0 + i], job.indptr[i0 + i + 1]):
                v = xd[q]
                grow = g_coef + job.indices[q] * c
                for j in range(c):
                    grow[j] += v * zr[j]
    if g_intercept != NULL:
        for i in range(r):
            zr = z + i * c
            for j in range(c):
                g_intercept[j] += zr[j]


cdef inline double _row_loss(real *witness, const LinearJob *job, Py_ssize_t i0, Py_ssize_t i,
                             real *z, const double *scale, double *work) noexcept nogil:
    cdef Py_ssize_t c = job.c
    cdef int kind = F64 if real is double else F32
    if job.dense_labels:
        return _active.dense_row[kind](z + i * c, <const real *>job.y + (i0 + i) * c, c, job.a,
                                       job.b, scale[i * job.scale_step], z + i * c, NULL, work)
    return _sparse_row(kind, &job.options, z + i * c, c, job.labels[i0 + i],
                       scale[i * job.scale_step], z + i * c, work)


cdef double _block_loss(real *witness, const LinearJob *job, Py_ssize_t i0, Py_ssize_t r,
                        real *z, real *loss, double *values, double *work) noexcept nogil:
    """The fused kernel over a block of logits: each row's loss, and the gradient of
    ``sum_i scale_i l_i`` over ``z``; returns that sum, added in row order."""
    cdef Py_ssize_t c = job.c, i, first = 0
    cdef const double *scale = job.scale + i0 * job.scale_step
    cdef double total = 0.0, value
    cdef double *thread_work
    if not job.dense_labels and job.lanes and not job.options.on:
        first = r
        i = 0
        while i < first:
            if i + job.lanes <= r:
                job.block(z + i * c, c, c, job.labels + i0 + i, scale + i * job.scale_step,
                          job.scale_step, z + i * c, c, loss + i, 1, NULL)
            else:
                job.partial(z + i * c, c, c, job.labels + i0 + i, scale + i * job.scale_step,
                            job.scale_step, z + i * c, c, loss + i, 1, NULL, r - i)
            i += job.lanes
    if job.row_threads > 1:
        with parallel(num_threads=job.row_threads):
            thread_work = job.row_work + threadid() * job.work_stride
            for i in prange(first, r, schedule='static'):
                values[i] = _row_loss(witness, job, i0, i, z, scale, thread_work)
    else:
        for i in range(first, r):
            values[i] = _row_loss(witness, job, i0, i, z, scale, work)
    for i in range(r):
        value = loss[i] if i < first else values[i]
        if job.row_loss != NULL:
            job.row_loss[i0 + i] = value
        total += scale[i * job.scale_step] * value
    return total


cdef void _block_hessp(real *witness, const LinearJob *job, Py_ssize_t i0, Py_ssize_t r,
                       real *z, real *q) noexcept nogil:
    """``q = c_i p * (q - p . q)`` per row, with ``p`` the softmax of the logits ``z``
    (overwritten) and ``q`` holding ``X v + v_intercept`` on entry."""
    cdef Py_ssize_t c = job.c, i, j
    cdef real *zr
    cdef real *qr
    cdef double m, s, dot, inv
    for i in range(r):
        zr = z + i * c
        qr = q + i * c
        m = zr[0]
        for j in range(1, c):
            if zr[j] > m:
                m = zr[j]
        for j in range(c):
            zr[j] = <real>(zr[j] - m)
        if real is float:
            _active.exp_f32(zr, zr, c)
        else:
            _active.exp_f64(zr, zr, c)
        s = 0.0
        dot = 0.0
        for j in range(c):
            s += zr[j]
            dot += zr[j] * qr[j]
        inv = 1.0 / s
        dot = dot * inv
        inv = inv * job.curvature[i0 + i]
        for j in range(c):
            qr[j] = <real>(inv * zr[j] * (qr[j] - dot))


cdef void _run_slot(real *witness, const LinearJob *job, Py_ssize_t slot, real *z, real *q,
                    real *loss, double *values, double *work) noexcept nogil:
    """The blocks of one slot, in order, into the slot's accumulators."""
    cdef Py_ssize_t n_blocks = (job.n + job.block_rows - 1) // job.block_rows
    cdef Py_ssize_t first = slot * n_blocks // job.n_slots
    cdef Py_ssize_t last = (slot + 1) * n_blocks // job.n_slots
    cdef Py_ssize_t blk, i0, r, dc = job.d * job.c
    cdef real *g_coef = NULL
    cdef double *g_intercept = NULL
    cdef double total = 0.0
    if job.slot_coef != NULL:
        g_coef = <real *>job.slot_coef + slot * dc
        memset(g_coef, 0, dc * sizeof(real))
    if job.slot_intercept != NULL:
        g_intercept = job.slot_intercept + slot * job.c
        memset(g_intercept, 0, job.c * sizeof(double))
    for blk in range(first, last):
        i0 = blk * job.block_rows
        r = min(job.block_rows, job.n - i0)
        _block_product(witness, job, i0, r, <const real *>job.coef,
                       <const real *>job.intercept, z)
        if job.curvature != NULL:
            _block_product(witness, job, i0, r, <const real *>job.v_coef,
                           <const real *>job.v_intercept, q)
            _block_hessp(witness, job, i0, r, z, q)
            _accumulate(witness, job, i0, r, q, g_coef, g_intercept)
            continue
        total += _block_loss(witness, job, i0, r, z, loss, values, work)
        if job.slot_coef != NULL:
            _accumulate(witness, job, i0, r, z, g_coef, g_intercept)
        if job.grad_x != NULL:
            _gemm(witness, _T, _N, <int>job.d, <int>r, <int>job.c, <const real *>job.coef,
                  <int>job.c, z, <int>job.c, 0.0, <real *>job.grad_x + i0 * job.d, <int>job.d)
    job.slot_loss[slot] = total


cdef inline Py_ssize_t _values_offset(Py_ssize_t block_rows, Py_ssize_t c,
                                      Py_ssize_t item) noexcept nogil:
    """Where a thread's float64 row losses start in its scratch, after the logits block,
    the direction's block and the compute-type row losses (8-byte aligned)."""
    return ((2 * block_rows * c + block_rows) * item + 7) // 8 * 8


cdef void _run_job(real *witness, LinearJob *job, _Scratch scratch, int n_threads) noexcept nogil:
    cdef Py_ssize_t s, j, k, dc = job.d * job.c
    cdef Py_ssize_t per_buffer = job.block_rows * job.c
    cdef Py_ssize_t values_at = _values_offset(job.block_rows, job.c, sizeof(real))
    cdef real *z
    cdef real *sum_coef = <real *>job.slot_coef
    cdef real *part
    if n_threads == 1:   # no team: the one run may split its rows (row_threads)
        z = <real *>_rows_of(scratch, 0)
        for s in range(job.n_slots):
            _run_slot(witness, job, s, z, z + per_buffer, z + 2 * per_buffer,
                      <double *>(<char *>z + values_at), _work_of(scratch, 0))
    else:
        with parallel(num_threads=n_threads):
            z = <real *>_rows_of(scratch, threadid())
            for s in prange(job.n_slots, schedule='dynamic', chunksize=1):
                _run_slot(witness, job, s, z, z + per_buffer, z + 2 * per_buffer,
                          <double *>(<char *>z + values_at), _work_of(scratch, threadid()))
    for s in range(1, job.n_slots):
        if sum_coef != NULL:
            part = sum_coef + s * dc
            for j in range(dc):
                sum_coef[j] += part[j]
        if job.slot_intercept != NULL:
            for j in range(job.c):
                job.slot_intercept[j] += job.slot_intercept[s * job.c + j]
        job.slot_loss[0] += job.slot_loss[s]


def linear_pass(cnp.ndarray x, cnp.ndarray indptr, cnp.ndarray indices, cnp.ndarray coef,
                cnp.ndarray intercept, cnp.ndarray labels, double a, double b,
                const double[::1] scale, cnp.ndarray curvature, cnp.ndarray v_coef,
                cnp.ndarray v_intercept, cnp.ndarray slot_coef, cnp.ndarray slot_intercept,
                double[::1] slot_loss, cnp.ndarray grad_x, cnp.ndarray row_loss,
                Py_ssize_t n, Py_ssize_t block_rows, int n_threads, int row_threads=1, *,
                ignore_index=None,
                const double[::1] class_weight=None, double label_smoothing=0.0):
    """One pass of the linear model over the rows (``fastxent.linear`` checks everything).

    Parameters
    ----------
    x : ndarray
        Dense X (n, d) with rows or columns contiguous, or a CSR matrix's data (then
        ``indptr`` (n + 1,) and ``indices`` are int64 arrays); the compute type.
    coef : ndarray (d, c), C order, the compute type; ``intercept`` (c,) or None.
    labels : ndarray
        int64 (n,), or dense (n, c) in C order and the compute type (``a * y + b``).
    scale : float64, (n,) or (1,): ``w_i / denominator``.
    curvature : float64 (n,) or None
        With it, the Hessian times ``(v_coef, v_intercept)`` goes into the slots instead of
        the gradient.
    slot_coef : ndarray (n_slots, d, c), the compute type, or None (no gradient)
        Written with the gradient of coef in ``slot_coef[0]``.
    slot_intercept : float64 (n_slots, c) or None; ``slot_loss`` float64 (n_slots,).
    grad_x : ndarray (n, d), C order, or None; ``row_loss`` float64 (n,) or None.
    n_threads : threads over the runs (slots); ``row_threads``: with one run, threads over
        each block's rows for the fused kernel.
    """
    cdef LinearJob job
    cdef Py_ssize_t item = x.itemsize
    cdef _Scratch scratch, rows_scratch
    cdef object spread = None
    cdef int kind, family
    memset(&job, 0, sizeof(job))
    if not have_blas():
        raise RuntimeError("the linear pass needs SciPy's BLAS (use_blas)")
    job.x = cnp.PyArray_BYTES(x)
    job.n, job.c = n, coef.shape[1]
    job.d = coef.shape[0]
    if indptr is not None:
        job.layout = X_CSR
        job.indptr = <const int64_t *>cnp.PyArray_DATA(indptr)
        job.indices = <const int64_t *>cnp.PyArray_DATA(indices)
    elif x.ndim == 2 and (x.shape[1] <= 1 or x.strides[1] == item):
        job.layout = X_ROWS
        job.ldx = x.strides[0] // item if x.shape[0] > 1 else max(1, job.d)
    else:
        job.layout = X_COLUMNS
        job.ldx = x.strides[1] // item if x.shape[1] > 1 else max(1, n)
    job.coef = cnp.PyArray_BYTES(coef)
    job.intercept = cnp.PyArray_BYTES(intercept) if intercept is not None else NULL
    job.dense_labels = labels.ndim == 2
    if job.dense_labels:
        job.y = cnp.PyArray_BYTES(labels)
    else:
        job.labels = <const int64_t *>cnp.PyArray_DATA(labels)
    job.a, job.b = a, b
    spread = _options_of(&job.options, ignore_index, class_weight, label_smoothing, job.c,
                         x.dtype)
    job.scale = &scale[0]
    job.scale_step = _scale_step(scale, n)
    job.row_loss = <double *>cnp.PyArray_DATA(row_loss) if row_loss is not None else NULL
    if curvature is not None:
        job.curvature = <const double *>cnp.PyArray_DATA(curvature)
        job.v_coef = cnp.PyArray_BYTES(v_coef)
        job.v_intercept = cnp.PyArray_BYTES(v_intercept) if v_intercept is not None else NULL
    job.slot_coef = cnp.PyArray_BYTES(slot_coef) if slot_coef is not None else NULL
    job.slot_intercept = (<double *>cnp.PyArray_DATA(slot_intercept)
                          if slot_intercept is not None else NULL)
    job.slot_loss = &slot_loss[0]
    job.n_slots = slot_loss.shape[0]
    job.grad_x = cnp.PyArray_BYTES(grad_x) if grad_x is not None else NULL
    job.block_rows = block_rows
    kind = F64 if item == 8 else F32
    job.lanes = _active.block_rows[kind]
    family = _family(kind, job.c, False, True)
    job.block = _active.sparse_lanes[kind] if family == LANES else _active.sparse_batch[kind]
    job.partial = (_active.sparse_lanes_partial[kind] if family == LANES
                   else _active.sparse_batch_partial[kind])
    if family == ROWS:
        job.lanes = 0
    n_threads = <int>max(1, min(n_threads, job.n_slots))
    job.row_threads = <int>max(1, row_threads) if n_threads == 1 and fx_have_openmp() else 1
    job.work_stride = (fx_work_size(job.c) + 7) // 8 * 8
    rows_scratch = _Scratch(job.row_threads, 0, job.work_stride)
    job.row_work = _work_of(rows_scratch, 0)
    scratch = _Scratch(n_threads, _values_offset(block_rows, job.c, item) + 8 * block_rows,
                       fx_work_size(job.c))
    with nogil:
        if item == 8:
            _run_job(<double *>NULL, &job, scratch, n_threads)
        else:
            _run_job(<float *>NULL, &job, scratch, n_threads)


def default_threads():
    """The kernels' thread count when none is asked for (OpenMP's, 1 without OpenMP)."""
    return fx_max_threads() if fx_have_openmp() else 1
