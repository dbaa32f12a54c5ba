# Included by _kernels.pyx: label distributions, in blocks and row kernels, with the
# dense options (class weights, a mask of entries) formed a row at a time.

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
    cdef Py_ssize_t full = x.rows - x.rows % p.lanes   # the rows of the full blocks
    cdef Py_ssize_t b_, i0, lanes = p.lanes, item = _itemsize(p.store)
    cdef Py_ssize_t xs = x.row_stride // item, ys = y.row_stride // item
    cdef Py_ssize_t gs = 0, gys = 0
    cdef bint loss_direct = _direct(loss, p.kind)
    cdef Py_ssize_t ls = loss.row_stride // _itemsize(p.kind) if loss_direct else 1
    cdef fx_dense_block_fn block = (_active.dense_lanes[p.store] if p.family == LANES
                                    else _active.dense_batch[p.store])
    cdef fx_dense_partial_fn partial = (_active.dense_lanes_partial[p.store]
                                        if p.family == LANES
                                        else _active.dense_batch_partial[p.store])
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
            g0 = NULL
            gy0 = NULL
            if grad != NULL:
                g0 = <void *>(grad.data + i0 * grad.row_stride)
            if ygrad != NULL:
                gy0 = <void *>(ygrad.data + i0 * ygrad.row_stride)
            out = loss.data + i0 * loss.row_stride if loss_direct else lossbuf
            if i0 < full:
                block(x.data + i0 * x.row_stride, xs, y.data + i0 * y.row_stride, ys, x.cols,
                      a, b, scale + i0 * scale_step, scale_step, g0, gs, gy0, gys, out, ls,
                      work)
            else:
                partial(x.data + i0 * x.row_stride, xs, y.data + i0 * y.row_stride, ys,
                        x.cols, a, b, scale + i0 * scale_step, scale_step, g0, gs, gy0, gys,
                        out, ls, work, x.rows - i0)
            if not loss_direct:
                _store_block_losses(p, loss, i0, min(lanes, x.rows - i0), lossbuf)


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
