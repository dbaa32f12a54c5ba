"""Fused linear cross-entropy: the loss, gradient and Hessian-vector product of a
multinomial linear model, ``logits = X @ coef + intercept``, a block of rows at a time.

Each block's logits come from one GEMM into a thread's buffer; the fused kernel then
writes the loss and, over the same buffer, the gradient with respect to the logits, from
which two more products give the gradients of ``coef`` and ``intercept`` (and of ``X`` on
request). The whole N x C logits never exist.

The objective, for per-row losses ``l_i`` (sparse or dense labels, with the options
of :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`) and row weights
``w_i`` (``sample_weight``, 1 without)::

    f = sum_i w_i l_i / denominator + l2_reg / 2 * ||coef||^2

``denominator`` is 1 for ``reduction="sum"``; for ``"mean"`` it is ``sum(w_i)``
over the rows not ignored, times their class weight with ``class_weight``
(PyTorch's mean). With ``reduction="mean"`` and ``l2_reg = 1 / (C * sum(w))``
this is scikit-learn's ``LogisticRegression`` objective (multinomial, lbfgs).

Threads: the results are the same, bit for bit, for any ``n_threads``
(``fastxent._linear.core``). X may be a NumPy array, a SciPy sparse matrix (CSR, or CSC
converted to CSR), a CuPy array or a Dask array (``fastxent._dask.linear``).
"""

import numpy as np

from ._backends import backend_for, is_lazy
from ._core.checks import is_scipy_sparse
from ._linear.core import hessp, non_finite, problem, refuse_non_finite, with_penalty

__all__ = ["LinearObjective", "linear_cross_entropy", "linear_cross_entropy_hessp"]


def linear_cross_entropy(X, coef, labels, *, intercept=None, sample_weight=None,
                         label_smoothing=0.0, class_weight=None, ignore_index=None, l2_reg=0.0,
                         reduction="mean", return_grad=True, return_grad_X=False,
                         chunk_rows=None, n_threads=None):
    """Loss and gradients of softmax cross-entropy on ``logits = X @ coef + intercept``.

    The logits are computed ``chunk_rows`` rows at a time, the fused kernel turns each
    block into its loss and logits gradient in place, and the parameter gradients are
    accumulated: memory beyond the inputs and results is one block per thread.

    Parameters
    ----------
    X : array_like or scipy.sparse matrix, shape (n_samples, n_features)
        NumPy, CuPy or Dask arrays; SciPy CSR or CSC matrices (not with ``return_grad_X``).
    coef : array_like, shape (n_features, n_classes)
        float32 when both ``X`` and ``coef`` are float32, else computed in float64.
    labels : array_like
        Integer class indices, shape (n_samples,), or label distributions (float),
        shape (n_samples, n_classes).
    intercept : array_like, shape (n_classes,), optional
    sample_weight : array_like, shape (n_samples,), optional
    label_smoothing : float in [0, 1]
    class_weight : array_like, shape (n_classes,), optional
        Integer labels only; see :func:`fastxent.nn.sparse_softmax_cross_entropy_with_logits`.
    ignore_index : int, optional
        Integer labels only: rows with this label contribute nothing.
    l2_reg : float >= 0
        Adds ``l2_reg / 2 * ||coef||^2`` (the intercept is not penalized).
    reduction : {"mean", "sum"}
    return_grad : bool
        Also return the gradients with respect to ``coef`` and ``intercept``.
    return_grad_X : bool
        Also return the gradient with respect to ``X`` (n_samples x n_features).
    chunk_rows : int, optional
        Rows per block; by default 256, fewer where that is over 512 KB of ``X`` or
        2**21 logits; with coefficients too large for one gradient per thread
        (``n_features * n_classes`` over about 4 million floats), 512 rows, fewer where
        that is over 2**24 logits.
    n_threads : int, optional
        Threads for the whole call, kernel and BLAS together (all cores by default). Any
        count gives the same results, bit for bit. For Dask arrays: the threads of each
        block's task (1 by default: Dask runs the blocks in parallel).

    Returns
    -------
    loss : float (a 0-d array for CuPy inputs, a lazy 0-d Dask array for Dask inputs)
    grad_coef : ndarray, shape (n_features, n_classes)
        With ``return_grad``.
    grad_intercept : ndarray of shape (n_classes,), or None without ``intercept``
        With ``return_grad``.
    grad_X : ndarray, shape (n_samples, n_features)
        With ``return_grad_X``, last.

    Examples
    --------
    >>> import numpy as np, fastxent
    >>> X = np.array([[1.0, 2.0], [0.5, -1.0]])
    >>> coef = np.zeros((2, 3))
    >>> loss, g_coef, g_intercept = fastxent.linear_cross_entropy(X, coef, [0, 2])
    >>> round(float(loss), 6)  # log(3): uniform predictions
    1.098612
    """
    options = dict(sample_weight=sample_weight, label_smoothing=label_smoothing,
                   class_weight=class_weight, ignore_index=ignore_index, reduction=reduction,
                   l2_reg=l2_reg, chunk_rows=chunk_rows, n_threads=n_threads)
    if is_lazy(X, coef, labels, intercept, sample_weight):
        from ._dask import linear as _linear_dask

        return _linear_dask.linear_cross_entropy(X, coef, labels, intercept, return_grad,
                                                 return_grad_X, options)
    data, (coef, intercept) = problem(X, coef, labels, intercept, backend=backend_for(
        X=X, coef=coef, labels=labels, intercept=intercept, sample_weight=sample_weight),
        **options)
    total, grad_coef, grad_intercept, grad_X = data.run(coef, intercept, return_grad,
                                                        return_grad_X)
    return with_penalty(data.xp, coef, data.l2, total, grad_coef, grad_intercept, grad_X,
                         return_grad, return_grad_X)


def fused_linear(labels, features, weights, *, return_grad, chunk_rows, n_threads):
    """Per-row losses of ``features @ weights`` and, with ``return_grad``, the gradients of
    their sum with respect to ``features`` and ``weights`` (``nn.fused_linear_cross_entropy``);
    lazy on Dask inputs."""
    if is_lazy(labels, features, weights):
        from ._dask import linear as _linear_dask

        return _linear_dask.fused_linear(labels, features, weights, return_grad, chunk_rows,
                                         n_threads)
    data, (weights, _) = problem(features, weights, labels, None, None,
                                 backend=backend_for(X=features, coef=weights, labels=labels),
                                 reduction="sum", chunk_rows=chunk_rows, n_threads=n_threads)
    rows = data.xp.empty(data.n, np.float64)
    _, grad_weights, _, grad_features = data.run(weights, None, return_grad, return_grad, rows)
    loss = rows.astype(data.dtype)
    return (loss, grad_features, grad_weights) if return_grad else loss


def linear_cross_entropy_hessp(X, coef, labels, v_coef, v_intercept=None, *, intercept=None,
                               sample_weight=None, label_smoothing=0.0, class_weight=None,
                               ignore_index=None, l2_reg=0.0, reduction="mean", chunk_rows=None,
                               n_threads=None):
    """The Hessian of :func:`linear_cross_entropy`'s loss times a direction.

    For the direction ``(v_coef, v_intercept)`` (``v_intercept`` only with
    ``intercept``): with ``r = X @ v_coef + v_intercept`` and ``p`` the softmax of
    the logits, each row's logits Hessian is ``c_i (diag(p) - p p^T)``, so
    ``H v = (X^T q + l2_reg v_coef, sum_i q_i)`` with ``q = c * p * (r - p . r)``.

    Returns
    -------
    h_coef : ndarray, shape (n_features, n_classes)
    h_intercept : ndarray, shape (n_classes,), or None without ``intercept``
        Lazy Dask arrays for Dask inputs.
    """
    options = dict(sample_weight=sample_weight, label_smoothing=label_smoothing,
                   class_weight=class_weight, ignore_index=ignore_index, reduction=reduction,
                   l2_reg=l2_reg, chunk_rows=chunk_rows, n_threads=n_threads)
    if is_lazy(X, coef, labels, intercept, sample_weight, v_coef, v_intercept):
        from ._dask import linear as _linear_dask

        return _linear_dask.linear_cross_entropy_hessp(X, coef, labels, v_coef, v_intercept,
                                                       intercept, options)
    data, (coef, intercept) = problem(X, coef, labels, intercept, backend=backend_for(
        X=X, coef=coef, labels=labels, intercept=intercept, sample_weight=sample_weight,
        v_coef=v_coef, v_intercept=v_intercept), **options)
    return hessp(data, coef, intercept, v_coef, v_intercept)


class LinearObjective:
    """:func:`linear_cross_entropy` on one flat parameter vector, for
    ``scipy.optimize.minimize(objective, x0, jac=True, hessp=objective.hessp)``.

    The vector is ``coef.ravel()`` followed by ``intercept`` (with ``fit_intercept``),
    in float64, as SciPy's optimizers want; the objective is computed in ``X``'s float
    type (float32 for float32 ``X``). ``X`` and the labels are checked once, here.

    Parameters
    ----------
    X, labels
        As :func:`linear_cross_entropy` takes them (fixed for the objective's life):
        NumPy, SciPy sparse or Dask (computed block by block at each call, X never
        gathered).
    n_classes : int
    fit_intercept : bool
    **options
        ``sample_weight``, ``label_smoothing``, ``class_weight``, ``ignore_index``,
        ``l2_reg``, ``reduction``, ``chunk_rows``, ``n_threads``; ``check_finite`` (default
        False): refuse an ``X`` with NaN or infinity as scikit-learn does (ValueError). On
        Dask the check rides in the first evaluation's pass over each block (X is read
        once), and that evaluation raises; otherwise X is checked here.
    """

    def __init__(self, X, labels, n_classes, *, fit_intercept=True, **options):
        check_finite = options.pop("check_finite", False)
        lazy = is_lazy(X, labels, options.get("sample_weight"))
        if not (lazy or is_scipy_sparse(X) or hasattr(X, "__array_namespace__")):
            X = np.asarray(X)
        self.dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        if lazy:
            from ._dask import linear as _linear_dask

            self._data = _linear_dask.DaskData(X, labels, n_classes, self.dtype,
                                               check_finite=check_finite, **options)
        else:
            if check_finite:
                refuse_non_finite(non_finite(X))
            backend = backend_for(X=X, labels=labels, sample_weight=options.get("sample_weight"))
            self._data, _ = problem(X, None, labels, None, options.pop("sample_weight", None),
                                    backend=backend, num_classes=n_classes, **options)
        self.n_features, self.n_classes = X.shape[1], int(n_classes)
        self.fit_intercept = fit_intercept
        self.size = self.n_features * self.n_classes + (self.n_classes if fit_intercept else 0)

    def threads_held(self):
        """A context that holds BLAS's thread count where every call of this objective
        wants it, for a loop of calls (an optimizer's): each call then leaves BLAS alone.

        >>> with objective.threads_held():                      # doctest: +SKIP
        ...     scipy.optimize.minimize(objective, x0, jac=True)
        """
        return self._data.threads_held()

    def unpack(self, w):
        """``(coef, intercept)`` of a flat vector (intercept None without fit_intercept)."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.size,):
            raise ValueError(f"the parameter vector must have {self.size} entries, got {w.shape}")
        cut = self.n_features * self.n_classes
        coef = w[:cut].reshape(self.n_features, self.n_classes)
        return coef, (w[cut:] if self.fit_intercept else None)

    def pack(self, coef, intercept=None):
        parts = [_host(coef).ravel()]
        if self.fit_intercept:
            parts.append(_host(intercept).ravel())
        return np.concatenate(parts)

    def __call__(self, w):
        """``(loss, gradient)`` at the flat vector ``w``."""
        coef, intercept = self._data.parameters(*self.unpack(w))
        total, g_coef, g_intercept, _ = self._data.run(coef, intercept, True, False)
        loss, g_coef, g_intercept = with_penalty(self._data.xp, coef, self._data.l2, total, g_coef,
                                                  g_intercept, None, True, False)
        return float(loss), self.pack(g_coef, g_intercept)

    def hessp(self, w, v):
        """The Hessian at ``w`` times the flat direction ``v``."""
        coef, intercept = self._data.parameters(*self.unpack(w))
        v_coef, v_intercept = self.unpack(v)
        h_coef, h_intercept = hessp(self._data, coef, intercept, v_coef, v_intercept)
        return self.pack(h_coef, h_intercept)


def _host(a):
    """A parameter-sized array as float64 NumPy (CuPy's are copied from the device)."""
    return np.asarray(a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else a,
                      dtype=np.float64)
