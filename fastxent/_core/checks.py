"""Argument checks: every one the public functions make, in one leaf module.

Every check runs before any output is written, and every failure names the argument and
the problem. Functions that make arrays take ``xp``, the array namespace of the call
(NumPy, CuPy, or ``dask.array`` where no element is read).
"""

import operator

import numpy as np

from .errors import InvalidArgumentError

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def is_bfloat16(dtype):
    """Whether ``dtype`` is ml_dtypes' bfloat16 (known by name: ml_dtypes is not imported)."""
    return dtype.name == "bfloat16" and dtype.itemsize == 2


def is_float(dtype):
    """float16, float32, float64 (any byte order) or bfloat16: the dtypes the kernels read."""
    return (dtype.kind == "f" and dtype.newbyteorder("=") in FLOAT_DTYPES) or is_bfloat16(dtype)


def known_shape(array, name):
    """Refuse a Dask array of unknown chunk sizes (after a boolean mask, for example)."""
    if any(size != size for size in getattr(array, "shape", ())):   # NaN: unknown
        raise ValueError(f"{name} has unknown chunk sizes (shape {array.shape}); call "
                         f"{name}.compute_chunk_sizes() first")


def real_array(a, name):
    """``a`` if it holds real numbers (booleans, integers, floats, bfloat16), else TypeError."""
    if not (a.dtype.kind in "biuf" or is_bfloat16(a.dtype)):
        raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
    return a


def losses_array(losses, xp):
    """Given per-example ``losses`` (``compute_weighted_loss``): real, integers as float64."""
    given(losses, "losses")
    losses = real_array(xp.asarray(losses), "losses")
    return losses.astype(np.float64) if losses.dtype.kind in "biu" else losses


def compute_dtype(dtype):
    """The dtype the kernels compute in: float32 for float16 and bfloat16, else the dtype."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 or is_bfloat16(dtype) else dtype


def _native(a):
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def given(value, name):
    """Refuse a missing (None) argument."""
    if value is None:
        raise ValueError(f"{name} must be given, got None")


def logits_array(logits, xp=np, name="logits"):
    """``logits`` as a native-order float16/32/64 or bfloat16 array of rank >= 1."""
    given(logits, name)
    a = xp.asarray(logits)
    if not is_float(a.dtype):
        raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got dtype "
                        f"{a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name} must have rank >= 1 (a class axis), got a scalar")
    return _native(a)


def batch_shape(logits_shape, axis=-1):
    """The logits' shape without the class axis."""
    axis %= len(logits_shape)
    return tuple(logits_shape[:axis]) + tuple(logits_shape[axis + 1:])


def sparse_labels_array(labels, logits_shape, xp=np, name="labels", axis=-1):
    """``labels`` as an integer array of exactly the logits' shape without ``axis``."""
    given(labels, name)
    a = xp.asarray(labels)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.shape != batch_shape(logits_shape, axis):
        which = "its last axis" if axis % len(logits_shape) == len(logits_shape) - 1 \
            else f"axis {axis % len(logits_shape)}"
        raise ValueError(
            f"{name} must have the shape of logits without {which}: "
            f"{name} shape {a.shape}, logits shape {tuple(logits_shape)}"
        )
    return _native(a)


def _bool_mask(where, shape, xp, name, what):
    m = xp.asarray(where)
    if m.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {m.dtype}")
    try:
        return xp.broadcast_to(m, tuple(shape))
    except ValueError:
        raise ValueError(f"{name} must be {what}; got shape {m.shape}") from None


def entry_mask(where, logits_shape, xp=np, name="where"):
    """A boolean mask of single logits broadcast to ``logits_shape``."""
    return _bool_mask(where, logits_shape, xp, name,
                      f"of the logits' rank, broadcastable to their shape {tuple(logits_shape)}")


def row_mask(where, rows_shape, xp=np, name="where"):
    """A per-row boolean mask broadcast to ``rows_shape`` (the batch), or None."""
    if where is None:
        return None
    return _bool_mask(where, rows_shape, xp, name,
                      f"a mask of rows, broadcastable to shape {tuple(rows_shape)} (the logits "
                      f"without the class axis), or of the logits' rank (label distributions "
                      f"only)")


def contiguous(a, dtype=None, xp=np):
    """``a`` as a C-contiguous, aligned array of ``dtype`` (a view where one exists).

    Alignment matters: arrays unpickled from buffers (Dask's workers) can start at
    any byte, and the kernels read them as whole int64 or float64 words."""
    out = xp.ascontiguousarray(a, dtype=dtype)
    if xp is np and not out.flags.aligned:
        out = out.copy()
    return out


def sparse_label_rows(labels, num_classes, backend, validate=None, name="labels", *,
                      ignore_index=None, offsets=None):
    """The labels flattened to contiguous int64 rows, after checking their range.

    The check runs when ``validate`` is true, or when it is None and the backend
    checks labels by default (the CPU does; the GPU gives NaN rows instead). Labels equal
    to ``ignore_index`` are not checked. ``offsets``: where ``labels`` starts in a larger
    array (a Dask block), so that the position reported is the whole array's.

    Raises InvalidArgumentError at the first label outside ``[0, num_classes)``,
    giving its value (as the caller passed it) and its position.
    """
    xp = backend.xp
    rows = contiguous(labels.reshape(-1), np.int64, xp)
    check = backend.checks_labels if validate is None else bool(validate)
    if not check or not rows.size:
        return rows
    checked = rows if ignore_index is None else xp.where(rows == ignore_index, 0, rows)
    flat = backend.first_invalid_label(checked, num_classes)
    if flat < 0:
        return rows
    position = np.unravel_index(flat, labels.shape)
    if offsets is not None:
        position = tuple(p + o for p, o in zip(position, offsets))
    value = labels.reshape(-1)[flat].item()
    raise InvalidArgumentError(
        f"Received a label value of {value} which is outside the valid range of "
        f"[0, {num_classes}). First at position {tuple(int(p) for p in position)} of {name}."
    )


def dense_labels_array(labels, logits_shape, logits_dtype, xp=np, name="labels"):
    """``labels`` broadcast (as a view) to ``logits_shape``, in a dtype the kernels read.

    Returns the view and the labels' own shape.
    """
    given(labels, name)
    a = xp.asarray(labels)
    if not (a.dtype.kind in "biu" or is_float(a.dtype)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if is_float(a.dtype):
        a = _native(a)
    else:
        a = a.astype(compute_dtype(logits_dtype))
    try:
        return xp.broadcast_to(a, logits_shape), a.shape
    except ValueError:
        raise ValueError(
            f"{name} shape {a.shape} does not broadcast to logits shape {tuple(logits_shape)}"
        ) from None


def normalize_axis(axis, ndim, name="axis"):
    """A valid axis as a non-negative int (numpy.exceptions.AxisError otherwise)."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim, f"{name} for logits of rank {ndim}")
    return axis % ndim


def at_least_one_class(logits_shape, axis=-1, name="logits"):
    """Raise ValueError when the class axis is empty (TensorFlow's rule, for every function)."""
    if logits_shape[axis] == 0:
        raise ValueError(f"{name} must have at least one class, but got 0 classes "
                         f"(shape {tuple(logits_shape)}, class axis {axis % len(logits_shape)})")


def check_n_threads(n_threads):
    """None (all cores, OpenMP's count) for None or -1 (scikit-learn's "all cores"), else a
    positive int."""
    if n_threads is None:
        return None
    try:
        n = operator.index(n_threads)
    except TypeError:
        raise TypeError(f"n_threads must be None or a positive integer, got {n_threads!r}") from None
    if n == -1:
        return None
    if n < 1:
        raise ValueError(f"n_threads must be None, -1 (all cores) or a positive integer, got {n}")
    return n


def _overlaps(a, b, xp):
    if not xp.may_share_memory(a, b):
        return False
    if xp is not np:
        return True  # bounds overlap: refused, as the exact test is NumPy's
    try:
        return np.shares_memory(a, b, max_work=10_000)
    except np.exceptions.TooHardError:
        return True


def _address(a):
    interface = getattr(a, "__array_interface__", None) or a.__cuda_array_interface__
    return interface["data"][0]


def _same_memory(a, b):
    return (
        _address(a) == _address(b)
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )


def output_array(out, name, shape, dtype, inputs, in_place_of=None, xp=np):
    """Check a caller's output array; returns it, or None when none was given.

    ``inputs`` maps argument names to the arrays the output must not overlap.
    ``in_place_of`` names one of them that ``out`` may be exactly (same memory,
    same shape and strides): the in-place gradient.
    """
    if out is None:
        return None
    if not isinstance(out, xp.ndarray):
        raise TypeError(f"{name} must be a {xp.__name__}.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if not getattr(out.flags, "writeable", True):
        raise ValueError(f"{name} is read-only")
    for input_name, array in inputs.items():
        if array is None or not isinstance(array, xp.ndarray) or not _overlaps(out, array, xp):
            continue
        if input_name == in_place_of and _same_memory(out, array):
            continue
        allowed = f" (only exactly {in_place_of} itself is allowed)" if input_name == in_place_of else ""
        raise ValueError(f"{name} overlaps {input_name} in memory{allowed}")
    return out


def no_outputs(out, grad_out):
    """Refuse ``out=`` and ``grad_out=`` of a lazy call: its results are new Dask arrays."""
    if out is not None or grad_out is not None:
        raise TypeError("out= and grad_out= are not supported for Dask arrays: "
                        "the results are lazy Dask arrays")


def output_arrays(out, grad_out, *, return_grad, result_shape, grad_shape, dtype, inputs,
                  in_place_of=None, xp=np):
    """Check the caller's ``out`` and ``grad_out``; returns them (None where not given).

    ``grad_out`` may be exactly the ``in_place_of`` input (the in-place gradient).
    """
    if grad_out is not None and not return_grad:
        raise ValueError("grad_out was given but return_grad is False; pass return_grad=True")
    out = output_array(out, "out", result_shape, dtype, inputs, xp=xp)
    if return_grad:
        grad_out = output_array(grad_out, "grad_out", grad_shape, dtype, {**inputs, "out": out},
                                in_place_of=in_place_of, xp=xp)
    return out, grad_out


class Reduction:
    """Types of loss reduction (``tf.compat.v1.losses.Reduction``).

    Plain strings; a string is accepted wherever a Reduction is, and so are the
    lowercase names without ``weighted_`` (``"mean"``, ``"sum"``, Keras's
    ``"sum_over_batch_size"``; PyTorch's ``"mean"``, ``"sum"`` and ``"none"`` mean the same).
    """

    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key):
        """The reduction ``key`` names (a Reduction, or a short name), else ValueError."""
        if isinstance(key, str):
            key = REDUCTION_NAMES.get(key, key)
        if not isinstance(key, str) or key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key!r}; expected one of {cls.all()} "
                             f"or {tuple(REDUCTION_NAMES)}")
        return key


REDUCTION_NAMES = {"mean": Reduction.MEAN, "sum": Reduction.SUM,
                   "sum_over_batch_size": Reduction.SUM_OVER_BATCH_SIZE,
                   "sum_by_nonzero_weights": Reduction.SUM_BY_NONZERO_WEIGHTS,
                   "sum_over_nonzero_weights": Reduction.SUM_BY_NONZERO_WEIGHTS}



def squeeze_last(xp, array, rank):
    """Drop a trailing dimension of 1 from an array of ``rank`` (TF's squeezable dimension)."""
    if array is None:
        return None
    a = xp.asarray(array)
    return a[..., 0] if a.ndim == rank and a.ndim > 0 and a.shape[-1] == 1 else array


def weights_array(weights, losses_shape, xp):
    """``weights`` checked against the losses' shape (TensorFlow's broadcast rule), float64."""
    if weights is None:
        raise ValueError("weights must be given (a scalar or an array), got None")
    w = real_array(xp.asarray(weights), "weights")
    losses_shape = tuple(losses_shape)
    if w.ndim != 0 and (w.ndim != len(losses_shape)
                        or any(d not in (1, n) for d, n in zip(w.shape, losses_shape))):
        raise ValueError(f"weights can not be broadcast to values. values.shape={losses_shape}, "
                         f"weights.shape={w.shape}")
    return w.astype(np.float64)


def class_weight_array(class_weight, num_classes, xp=np):
    """``class_weight`` checked (real, finite, one per class) as contiguous float64, or None."""
    if class_weight is None:
        return None
    u = real_array(xp.asarray(class_weight), "class_weight")
    if u.shape != (num_classes,):
        raise ValueError(f"class_weight must have one weight per class, shape "
                         f"({num_classes},); got shape {u.shape}")
    u = contiguous(u, np.float64, xp)
    if not bool(xp.all(xp.isfinite(u))):
        raise ValueError("class_weight must be finite")
    return u


def ignore_index_value(ignore_index):
    """``ignore_index`` as an int, or None."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    return int(ignore_index)


def label_smoothing_value(label_smoothing):
    """``label_smoothing`` as a float in [0, 1]."""
    try:
        eps = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing must be a number, got {label_smoothing!r}") from None
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    return eps


# Arrays of other libraries that np.asarray would take silently, giving NumPy results back
# (and a pandas index, or a JAX or torch device, lost): the conversion to write instead.
_FOREIGN = {
    "torch": ("a torch.Tensor", "{name}.numpy() (no copy for a CPU tensor; .detach() it first "
              "if it requires grad) and torch.from_numpy(result) for a tensor back, or "
              "torch.nn.functional.cross_entropy to stay in torch"),
    "jax": ("a JAX array", "np.asarray({name}) (no copy on the CPU) and jax.numpy.asarray(result) "
            "for a JAX array back, or optax's losses to stay in JAX"),
    "jaxlib": ("a JAX array", "np.asarray({name}) (no copy on the CPU) and "
               "jax.numpy.asarray(result) for a JAX array back"),
    "pandas": ("a pandas object", "{name}.to_numpy() (and wrap the result in pandas with the "
               "index you mean)"),
}


def refuse_unsupported(**arrays):
    """Refuse, naming the argument and the conversion to write, what ``asarray`` would take
    silently and get wrong or lose: NumPy masked arrays (the mask), torch tensors, JAX
    arrays and pandas objects (their kind: the results would be NumPy arrays)."""
    for name, array in arrays.items():
        if isinstance(array, np.ma.MaskedArray):
            raise TypeError(
                f"{name} is a NumPy masked array; fastxent does not read masks. Pass the "
                f"mask as where= (True where kept: ~{name}.mask, where the function takes "
                f"where=), or {name}.filled(value) for the values you mean")
        library = type(array).__module__.partition(".")[0]
        if library in _FOREIGN:
            kind, conversion = _FOREIGN[library]
            raise TypeError(
                f"{name} is {kind} ({type(array).__name__}); fastxent computes on NumPy, "
                f"CuPy and Dask arrays and gives results of their kind. Pass "
                f"{conversion.format(name=name)}")


# --- the linear layer (``fastxent.linear``): X @ coef + intercept ------------------------------

def is_scipy_sparse(X):
    """Whether ``X`` is a SciPy sparse matrix or array."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


def real_matrix(a, name, xp, what="(n_samples, n_features)"):
    """``a`` as a 2-D array of real numbers (not converted)."""
    given(a, name)
    a = a if is_scipy_sparse(a) else xp.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be {what}; got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
    return a


def linear_dtype(*dtypes):
    """The compute dtype of a linear problem: float32 when every input is, else float64."""
    return np.dtype(np.float32 if all(d == np.float32 for d in dtypes) else np.float64)


def _csr(X, dtype):
    """A SciPy sparse X as checked CSR arrays ``(indptr, indices, data)``."""
    X = X.tocsr()
    indptr, indices = contiguous(X.indptr, np.int64), contiguous(X.indices, np.int64)
    data = contiguous(X.data, dtype)
    nnz = data.shape[0]
    if (indptr.shape != (X.shape[0] + 1,) or indptr[0] != 0 or indptr[-1] != nnz
            or indices.shape != (nnz,) or np.any(np.diff(indptr) < 0)
            or (nnz and (indices.min() < 0 or indices.max() >= X.shape[1]))):
        raise ValueError("X is a malformed CSR matrix (indptr or indices out of range)")
    return X if X.dtype == dtype else X.astype(dtype), (indptr, indices, data)


def _design_matrix(X, dtype, xp, eager):
    """X in the compute dtype (its layout kept where the BLAS reads it), and its CSR arrays
    (None for a dense X)."""
    if is_scipy_sparse(X):
        if xp is not np:
            raise TypeError("a SciPy sparse X needs NumPy coef and labels")
        return _csr(X, dtype)
    X = X.astype(dtype, copy=False)
    item = dtype.itemsize
    if eager and xp is np and not (X.flags.aligned and (item in X.strides or 0 in X.shape)):
        X = X.copy(order="C")   # aligned too
    return X, None


def linear_reduction(reduction):
    """``"mean"`` or ``"sum"`` from any of their names, else ValueError."""
    try:
        key = {Reduction.MEAN: "mean", Reduction.SUM: "sum"}.get(Reduction.validate(reduction))
    except ValueError:
        key = None
    if key is None:
        raise ValueError(f"reduction must be 'mean' or 'sum' (Reduction.MEAN, Reduction.SUM), "
                         f"got {reduction!r}")
    return key


def chunk_rows_value(chunk_rows):
    """None, or a positive int."""
    if chunk_rows is not None and (isinstance(chunk_rows, bool)
                                   or not isinstance(chunk_rows, (int, np.integer))
                                   or chunk_rows < 1):
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    return None if chunk_rows is None else int(chunk_rows)


def l2_value(l2_reg):
    """A finite float >= 0."""
    l2 = float(l2_reg)
    if not (l2 >= 0 and np.isfinite(l2)):
        raise ValueError(f"l2_reg must be a finite number >= 0, got {l2_reg!r}")
    return l2


def linear_problem(X, labels, num_classes, dtype, xp, backend, *, sample_weight=None,
                   label_smoothing=0.0, class_weight=None, ignore_index=None, reduction="mean",
                   l2_reg=0.0, chunk_rows=None, n_threads=None, row_offset=None):
    """Every argument of a linear problem but its parameters, checked: a dict of them.

    ``backend`` None: a lazy problem on the namespace ``xp`` (Dask), checked on its
    metadata (each block checks its labels' range); otherwise the labels are range-checked
    and integer labels given as int64 rows. ``row_offset``: where these rows start in a
    larger X (a Dask block), for the position of a bad label.
    """
    refuse_unsupported(X=X, labels=labels, sample_weight=sample_weight)
    X = real_matrix(X, "X", xp)
    if is_scipy_sparse(X) and backend is None:
        raise TypeError("a SciPy sparse X cannot go with Dask labels; make X a Dask array of "
                        "sparse chunks (dask.array.from_array)")
    known_shape(X, "X")
    n = X.shape[0]
    if num_classes < 1:
        raise ValueError("coef must have at least one class (column)")
    X, csr = _design_matrix(X, dtype, xp, backend is not None)
    given(labels, "labels")
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"labels must be integers or floats, got dtype {labels.dtype}")
    sparse = labels.dtype.kind in "iu"
    if sparse:
        labels = sparse_labels_array(labels, (n, num_classes), xp)
    elif class_weight is not None or ignore_index is not None:
        raise ValueError("class_weight and ignore_index need integer labels")
    elif labels.shape != (n, num_classes):
        raise ValueError(f"dense labels must have shape {(n, num_classes)} (n_samples, "
                         f"n_classes); got {labels.shape}")
    weights = None
    if sample_weight is not None:
        weights = xp.asarray(sample_weight)
        if weights.dtype.kind not in "biuf" or weights.shape != (n,):
            raise ValueError(f"sample_weight must be {n} real numbers, got dtype "
                             f"{weights.dtype}, shape {weights.shape}")
        weights = weights.astype(np.float64)
    checked = dict(
        X=X, csr=csr, labels=labels, sparse=sparse, weights=weights,
        ignore_index=ignore_index_value(ignore_index),
        class_weight=class_weight_array(class_weight, num_classes,
                                        np if backend is None else xp),
        eps=label_smoothing_value(label_smoothing), reduction=linear_reduction(reduction),
        l2=l2_value(l2_reg),
        chunk_rows=chunk_rows_value(chunk_rows), n_threads=check_n_threads(n_threads))
    if backend is not None and sparse:
        checked["labels"] = sparse_label_rows(
            labels, num_classes, backend, True, ignore_index=checked["ignore_index"],
            offsets=None if row_offset is None else (row_offset,))
    elif backend is not None:
        checked["labels"] = contiguous(labels, dtype, xp)
    if backend is not None and weights is not None:
        checked["weights"] = contiguous(weights, np.float64, xp)
    return checked


def linear_parameters(coef, intercept, n_features, num_classes, dtype, xp, name="coef"):
    """``coef`` (and ``intercept``) checked against the problem, contiguous in ``dtype``."""
    refuse_unsupported(**{name: coef, "intercept": intercept})
    coef = real_matrix(coef, name, xp, "(n_features, n_classes)")
    if coef.shape != (n_features, num_classes):
        raise ValueError(f"X must be (n_samples, n_features) and {name} (n_features, "
                         f"n_classes); got X with {n_features} features, {name} shape "
                         f"{coef.shape}")
    coef = contiguous(coef, dtype, xp)
    if intercept is not None:
        intercept = contiguous(xp.asarray(intercept), dtype, xp)
        if intercept.shape != (num_classes,):
            raise ValueError(f"intercept must have shape ({num_classes},), got "
                             f"{intercept.shape}")
    return coef, intercept
