# Included by _kernels.pyx: integer labels, a call's rows in blocks (rows in lanes, row
# batches) and row kernels, and long rows split over threads.

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
    cdef Py_ssize_t full = x.rows - x.rows % p.lanes   # the rows of the full blocks
    cdef Py_ssize_t b, i0, lanes = p.lanes, item = _itemsize(p.store), gs = 0
    cdef Py_ssize_t xs = x.row_stride // item
    cdef bint loss_direct = _direct(loss, p.kind)
    cdef Py_ssize_t ls = loss.row_stride // _itemsize(p.kind) if loss_direct else 1
    cdef fx_sparse_block_fn block = (_active.sparse_lanes[p.store] if p.family == LANES
                                     else _active.sparse_batch[p.store])
    cdef fx_sparse_partial_fn partial = (_active.sparse_lanes_partial[p.store]
                                         if p.family == LANES
                                         else _active.sparse_batch_partial[p.store])
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
            g0 = NULL
            if grad != NULL:
                g0 = <void *>(grad.data + i0 * grad.row_stride)
            out = loss.data + i0 * loss.row_stride if loss_direct else lossbuf
            if i0 < full:
                block(x.data + i0 * x.row_stride, xs, x.cols, labels + i0,
                      scale + i0 * scale_step, scale_step, g0, gs, out, ls, work)
            else:
                partial(x.data + i0 * x.row_stride, xs, x.cols, labels + i0,
                        scale + i0 * scale_step, scale_step, g0, gs, out, ls, work, x.rows - i0)
            if not loss_direct:
                _store_block_losses(p, loss, i0, min(lanes, x.rows - i0), lossbuf)


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
    spread = _options_of(&o, ignore_index, class_weight, label_smoothing, x.cols,
                         np.float64 if p.kind == F64 else np.float32)
    if o.on:
        # the generalized row is a row kernel; a half kind's rows are formed in the compute
        # kind when the spread rides in the pass
        _rows_only(&p, &x, NULL, gp, NULL, label_smoothing != 0.0)
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
