# Included by _kernels.pyx: the pieces of a class axis split across blocks (the Dask
# executor's), and the row math for arrays (fastxent._dask.lse).

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
    all -inf. Combine blocks with the log-sum-exp rule (``fastxent._dask.lse``).
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


# --- the row math for arrays (fastxent._dask.lse: the split class axis on NumPy chunks) ------------

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
