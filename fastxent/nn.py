"""``tf.nn``'s softmax cross-entropy functions for NumPy arrays.

Both functions are keyword-only, as in TensorFlow. With ``return_grad=True``
they also return the gradient of ``sum(loss)`` with respect to the logits,
computed in the same pass over the logits.
"""

from ._core import plan as _core
from .linear import fused_linear

__all__ = [
    "fused_linear_cross_entropy",
    "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits",
]


def sparse_softmax_cross_entropy_with_logits(
    *, labels=None, logits=None, name=None, return_grad=False, out=None, grad_out=None,
    n_threads=None, validate=None, ignore_index=None, class_weight=None, label_smoothing=0.0,
    axis=-1, where=None,
):
    """Softmax cross-entropy of integer class labels.

    ``loss[i] = logsumexp(logits[i, :]) - logits[i, labels[i]]``.

    Parameters
    ----------
    labels : array_like of int, shape ``[d_0, ..., d_{r-1}]``
        Class indices in ``[0, num_classes)``; any integer dtype.
    logits : array_like of float16/32/64 or bfloat16, shape ``[d_0, ..., d_{r-1}, num_classes]``
        Unscaled log-probabilities (float16 and bfloat16, from ``ml_dtypes``, are computed in float32).
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
        three. On Dask arrays whose class axis is split across chunks, only
        ``ignore_index`` (NotImplementedError names the others).
    axis : int, default -1
        The class axis of ``logits`` (optax's ``axis``); ``labels`` has the logits' shape
        without it.
    where : array_like of bool, optional
        A mask of rows, broadcastable to ``labels``' shape (optax's ``where`` given per
        example): a row where it is False gets loss 0 and gradient 0, and its label is not
        checked.

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
    if (validate is None and ignore_index is None and class_weight is None and where is None
            and type(axis) is int and axis == -1
            and type(label_smoothing) in (float, int) and label_smoothing == 0):
        result = _core.fast_sparse(logits, labels, return_grad, -1, 1.0, out, grad_out,
                                   n_threads)
        if result is not None:
            return result
    return _core.sparse(
        labels, logits, return_grad=return_grad, out=out, grad_out=grad_out,
        n_threads=n_threads, validate=validate, ignore_index=ignore_index,
        class_weight=class_weight, label_smoothing=label_smoothing, axis=axis, where=where)


def dense(labels, logits, axis, *, return_grad, return_labels_grad, out, grad_out, n_threads,
          where=None, class_weight=None, label_smoothing=0.0):
    """Shared body of the v2 and v1 dense functions."""
    return _core.dense(
        labels, logits, axis=axis, return_grad=return_grad,
        return_labels_grad=return_labels_grad, out=out, grad_out=grad_out, n_threads=n_threads,
        where=where, class_weight=class_weight, label_smoothing=label_smoothing)


def softmax_cross_entropy_with_logits(
    *, labels=None, logits=None, axis=-1, name=None, return_grad=False,
    return_labels_grad=False, out=None, grad_out=None, n_threads=None, where=None,
    class_weight=None, label_smoothing=0.0,
):
    """Softmax cross-entropy of label distributions (``tf.nn.softmax_cross_entropy_with_logits``, v2).

    ``loss = sum(labels * (logsumexp(logits) - logits), axis)``, a term taken as 0
    wherever the label is 0 (so a ``-inf`` logit masked by a 0 label costs nothing).

    Parameters
    ----------
    labels : array_like, real numeric
        Broadcastable to ``logits``' shape (without changing it); each vector
        along ``axis`` should be a probability distribution (not checked).
    logits : array_like of float16/32/64 or bfloat16
        Unscaled log-probabilities, with at least one class along ``axis``
        (ValueError otherwise, as in TensorFlow).
    axis : int or tuple of ints, default -1
        The class axis; any valid axis, negative allowed. A tuple (optax's) makes the
        entries of those axes the classes.
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
    where : array_like of bool, optional
        A mask of rows, broadcastable to the loss's shape: a row where it is False gets
        loss 0 and zero gradients (optax's ``where`` given per example).
    class_weight : array_like, shape ``(num_classes,)``, optional
        Per-class weights (PyTorch's ``weight`` with probability targets):
        ``loss = -sum_j w_j y'_j log p_j``, computed in the kernel's one pass. Not on Dask
        arrays whose class axis is split across chunks.
    label_smoothing : float in [0, 1], default 0
        The labels used are ``(1 - eps) * labels + eps / num_classes`` (PyTorch's and
        ``losses.softmax_cross_entropy``'s smoothing).

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
                 n_threads=n_threads, where=where, class_weight=class_weight,
                 label_smoothing=label_smoothing)


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def fused_linear_cross_entropy(*, labels=None, features=None, weights=None, name=None,
                               return_grad=False, chunk_rows=None, n_threads=None):
    """Softmax cross-entropy of ``logits = features @ weights`` without the whole logits
    (TensorFlow's ``tf.nn.fused_linear_cross_entropy``).

    ``loss[i]`` is :func:`softmax_cross_entropy_with_logits` of ``labels[i]`` and
    ``features[i] @ weights`` for label distributions, or
    :func:`sparse_softmax_cross_entropy_with_logits` for integer labels; the logits are
    formed a block of rows at a time (:func:`fastxent.linear_cross_entropy`), so memory
    beyond the inputs and results is one block.

    Parameters
    ----------
    labels : array_like
        Integer classes, shape ``(n,)``, or label distributions, shape ``(n, num_classes)``.
    features : array_like, shape ``(n, d)``
    weights : array_like, shape ``(d, num_classes)``
        float32 when both ``features`` and ``weights`` are float32, else float64.
    name : str, optional
        Accepted for TensorFlow compatibility; unused.
    return_grad : bool, default False
        Also return the gradients of ``sum(loss)`` with respect to ``features`` and
        ``weights``.
    chunk_rows, n_threads
        As in :func:`fastxent.linear_cross_entropy`.

    Returns
    -------
    loss : ndarray, shape ``(n,)``
    dfeatures : ndarray, shape ``(n, d)``
        With ``return_grad``.
    dweights : ndarray, shape ``(d, num_classes)``
        With ``return_grad``.
        Lazy Dask arrays, block by block, for Dask ``features`` or ``labels``.

    Examples
    --------
    >>> import numpy as np, fastxent
    >>> fastxent.nn.fused_linear_cross_entropy(
    ...     labels=[0, 2], features=np.array([[1.0, 2.0], [0.5, -1.0]]), weights=np.zeros((2, 3)))
    array([1.09861229, 1.09861229])
    """
    return fused_linear(labels, features, weights, return_grad=return_grad,
                        chunk_rows=chunk_rows, n_threads=n_threads)
