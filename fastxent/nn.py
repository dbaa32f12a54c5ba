"""``tf.nn``'s softmax cross-entropy functions for NumPy arrays.

Both functions are keyword-only, as in TensorFlow. With ``return_grad=True``
they also return the gradient of ``sum(loss)`` with respect to the logits,
computed in the same pass over the logits.
"""

import numpy as np

from . import _checks, _extras, _rows
from ._dispatch import backend_for

__all__ = [
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits",
]


def _scalar_if_0d(result, out):
    return result[()] if out is None and result.ndim == 0 else result


def sparse_softmax_cross_entropy_with_logits(
    *, labels=None, logits=None, name=None, return_grad=False, out=None, grad_out=None,
    n_threads=None, validate=None, ignore_index=None, class_weight=None, label_smoothing=0.0,
):
    """Softmax cross-entropy of integer class labels.

    ``loss[i] = logsumexp(logits[i, :]) - logits[i, labels[i]]``.

    Parameters
    ----------
    labels : array_like of int, shape ``[d_0, ..., d_{r-1}]``
        Class indices in ``[0, num_classes)``; any integer dtype.
    logits : array_like of float16/32/64, shape ``[d_0, ..., d_{r-1}, num_classes]``
        Unscaled log-probabilities (float16 is computed in float32).
    name : str, optional
        Accepted for TensorFlow compatibility; unused.
    return_grad : bool, default False
        Also return ``dlogits = softmax(logits) - onehot(labels)``.
    out : ndarray, optional
        Array of ``labels``' shape and ``logits``' dtype for the loss.
    grad_out : ndarray, optional
        Array of ``logits``' shape and dtype for the gradient; may be ``logits``
        itself, to overwrite the logits with their gradient.
    n_threads : int, optional
        Threads to use; None is OpenMP's default (``OMP_NUM_THREADS``).
    validate : bool, optional
        Check that every label is in ``[0, num_classes)`` and raise
        InvalidArgumentError otherwise. None (the default) checks on the CPU;
        on the GPU (CuPy arrays) a bad label gives a NaN row instead, as in
        TensorFlow, unless ``validate=True``.
    ignore_index : int, optional
        Rows with this label get loss 0 and gradient 0 (PyTorch's ``ignore_index``;
        not range-checked).
    class_weight : array_like, shape ``(num_classes,)``, optional
        Per-class weights (PyTorch's ``weight``): a row's loss and gradient are
        scaled by the weight of its label (with smoothing, see below).
    label_smoothing : float in [0, 1], default 0
        PyTorch's label smoothing for integer labels, without building a dense
        target: ``(1 - eps) * u[t] * (lse - x[t]) + eps / C * sum_j u[j] (lse - x[j])``
        with ``u`` the class weights (1 without). TensorFlow has none of these
        three; they are not available on Dask arrays.

    Returns
    -------
    loss : ndarray or scalar
        Shape of ``labels``, dtype of ``logits``.
    dlogits : ndarray
        Only with ``return_grad=True``.

    Raises
    ------
    InvalidArgumentError
        A label outside ``[0, num_classes)``; the message gives its value and position.
    ValueError
        Missing arguments, mismatched shapes, no classes, bad ``out``/``grad_out``.
    TypeError
        Positional arguments, non-float logits, non-integer labels.

    Examples
    --------
    >>> import numpy as np, fastxent
    >>> loss, dlogits = fastxent.nn.sparse_softmax_cross_entropy_with_logits(
    ...     labels=np.array([3, 0]), logits=np.array([[1., 1, 1, 1], [1, 2, 3, 4]]),
    ...     return_grad=True)
    >>> np.round(loss, 4)
    array([1.3863, 3.4402])
    """
    backend = backend_for(labels=labels, logits=logits)
    extras = _extras.SparseExtras.any_given(ignore_index, class_weight, label_smoothing)
    if getattr(backend, "lazy", False):
        if extras:
            raise NotImplementedError("ignore_index, class_weight and label_smoothing are not "
                                      "available on Dask arrays")
        return backend.sparse_softmax_cross_entropy_with_logits(
            labels, logits, return_grad, out, grad_out, _checks.check_n_threads(n_threads),
            validate)
    xp = backend.xp
    logits = _checks.logits_array(logits, xp)
    labels = _checks.sparse_labels_array(labels, logits.shape, xp)
    num_classes = logits.shape[-1]
    if num_classes == 0:
        raise ValueError(f"logits must have at least one class; got shape {logits.shape}")
    n_threads = _checks.check_n_threads(n_threads)
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=labels.shape,
        grad_shape=logits.shape, dtype=logits.dtype, inputs={"logits": logits, "labels": labels},
        in_place_of="logits", xp=xp)
    if extras:
        options = _extras.SparseExtras(
            xp, _extras.check_labels(labels, num_classes, backend, validate, ignore_index),
            num_classes, ignore_index, class_weight, label_smoothing)
        row_loss, grad = _extras.sparse_call(backend, logits, options, return_grad=return_grad,
                                             grad_out=grad_out, n_threads=n_threads)
        loss = row_loss.reshape(labels.shape)
        if out is not None:
            out[...] = loss
            loss = out
        else:
            loss = _scalar_if_0d(loss.astype(logits.dtype), None)
        return (loss, grad) if return_grad else loss
    label_rows = _checks.sparse_label_rows(labels, num_classes, backend, validate)
    loss, grad, _ = _rows.fused(backend, logits, label_rows, sparse=True, loss_dtype=logits.dtype,
                                out=out, want_grad=return_grad, grad_out=grad_out,
                                n_threads=n_threads)
    loss = _scalar_if_0d(loss, out)
    return (loss, grad) if return_grad else loss


def _sum_to_shape(xp, full, shape):
    """Sum ``full`` over the axes along which an array of ``shape`` was broadcast to it."""
    lead = full.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and full.shape[lead + k] != 1)
    if not axes:
        return full
    return xp.sum(full, axis=axes, dtype=np.float64).reshape(shape).astype(full.dtype)


def dense(labels, logits, axis, *, return_grad, return_labels_grad, out, grad_out, n_threads):
    """Shared body of the v2 and v1 dense functions (checks, then one fused call)."""
    backend = backend_for(labels=labels, logits=logits)
    if getattr(backend, "lazy", False):
        return backend.dense_softmax_cross_entropy(
            labels, logits, axis, return_grad, return_labels_grad, out, grad_out,
            _checks.check_n_threads(n_threads))
    xp = backend.xp
    logits = _checks.logits_array(logits, xp)
    axis = _checks.normalize_axis(axis, logits.ndim)
    labels, labels_shape = _checks.dense_labels_array(labels, logits.shape, logits.dtype, xp)
    n_threads = _checks.check_n_threads(n_threads)
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    out, grad_out = _checks.output_arrays(
        out, grad_out, return_grad=return_grad, result_shape=batch_shape,
        grad_shape=logits.shape, dtype=logits.dtype, inputs={"logits": logits, "labels": labels},
        in_place_of="logits", xp=xp)
    loss, grad, labels_grad = _rows.fused(
        backend, logits, labels, axis=axis, sparse=False, loss_dtype=logits.dtype, out=out,
        want_grad=return_grad, grad_out=grad_out, want_labels_grad=return_labels_grad,
        n_threads=n_threads,
    )
    results = [_scalar_if_0d(loss, out)]
    if return_grad:
        results.append(grad)
    if return_labels_grad:
        results.append(_sum_to_shape(xp, labels_grad, labels_shape))
    return tuple(results) if len(results) > 1 else results[0]


def softmax_cross_entropy_with_logits(
    *, labels=None, logits=None, axis=-1, name=None, return_grad=False,
    return_labels_grad=False, out=None, grad_out=None, n_threads=None,
):
    """Softmax cross-entropy of label distributions (``tf.nn.softmax_cross_entropy_with_logits``, v2).

    ``loss = sum(labels * (logsumexp(logits) - logits), axis)``, a term taken as 0
    wherever the label is 0 (so a ``-inf`` logit masked by a 0 label costs nothing).

    Parameters
    ----------
    labels : array_like, real numeric
        Broadcastable to ``logits``' shape (without changing it); each vector
        along ``axis`` should be a probability distribution (not checked).
    logits : array_like of float16/32/64
        Unscaled log-probabilities.
    axis : int, default -1
        The class axis; any valid axis, negative allowed.
    name : str, optional
        Accepted for TensorFlow compatibility; unused.
    return_grad : bool, default False
        Also return ``dlogits = softmax(logits) * sum(labels) - labels``, the true
        derivative of the loss (TensorFlow's ``softmax - labels`` when labels sum to 1).
    return_labels_grad : bool, default False
        Also return ``dlabels = logsumexp(logits) - logits`` (that is
        ``-log_softmax(logits)``), summed over the axes along which ``labels``
        was broadcast, so it has ``labels``' shape; dtype of ``logits``.
    out, grad_out, n_threads
        As in :func:`sparse_softmax_cross_entropy_with_logits`.

    Returns
    -------
    loss : ndarray or scalar
        ``logits``' shape without ``axis``; dtype of ``logits``.
    dlogits : ndarray
        With ``return_grad=True``.
    dlabels : ndarray
        With ``return_labels_grad=True`` (after ``dlogits`` when both are asked for).

    Examples
    --------
    >>> import numpy as np, fastxent
    >>> fastxent.nn.softmax_cross_entropy_with_logits(
    ...     labels=[[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]],
    ...     logits=np.array([[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]], np.float32))
    array([0.16984601, 0.8247449 ], dtype=float32)
    """
    return dense(labels, logits, axis, return_grad=return_grad,
                 return_labels_grad=return_labels_grad, out=out, grad_out=grad_out,
                 n_threads=n_threads)


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits
