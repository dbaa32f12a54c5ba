# Included by _kernels.pyx: the fast path, a whole common call (the plain sparse call,
# its reductions and weights) planned, run and reduced in C.

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
