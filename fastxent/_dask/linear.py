"""Dask arrays in ``fastxent.linear``: the objective of a linear model over row blocks.

X is cut along its rows only (its feature axis is made one chunk); the labels and the
sample weights follow X's row chunks. Each row block is one task that runs the compiled
pass of ``fastxent.linear`` on its NumPy chunk with the weights as they are (a "sum"), and
returns its share: the weighted loss sum, the coef and intercept gradients (or the
Hessian times a direction) and what a "mean" divides by. The shares are added by one
tree reduction, in a fixed order, and divided at the end: the block's logits never leave
its worker, and X is never gathered. Each task runs on one thread unless ``n_threads``
says otherwise (Dask runs the blocks in parallel).
"""

import contextlib
import operator

import numpy as np

from .._backends import backend_for
from .._core import checks
from .._linear import core

_FAN_IN = 8   # shares added per task of the tree


def _da():
    import dask.array as da

    return da


class DaskData:
    """The Dask counterpart of ``fastxent._linear.core.Data``: the same checks (on the
    arrays' metadata), ``parameters`` and ``run``, computed (``run``) or lazy (``graph``)."""

    def __init__(self, X, labels, num_classes, dtype, *, sample_weight=None, n_threads=None,
                 check_finite=False, **options):
        da = _da()
        if not isinstance(X, da.Array) and not checks.is_scipy_sparse(X):
            X = np.asarray(X)
            rows = labels.chunks[0] if isinstance(labels, da.Array) else -1
            X = da.from_array(X, chunks=(rows, -1) if X.ndim == 2 else -1)
        # the checks of the NumPy problem, on the metadata (each block checks its labels)
        checked = checks.linear_problem(X, labels, num_classes, dtype, da, None,
                                        sample_weight=sample_weight, n_threads=n_threads,
                                        **options)
        X = checked["X"]
        self.X = X if X.numblocks[1] == 1 else X.rechunk({1: -1})
        self.xp = np   # of the parameters and results
        self.n, self.n_features = X.shape
        self.num_classes, self.dtype = int(num_classes), np.dtype(dtype)
        self.reduction, self.l2 = checked["reduction"], checked["l2"]
        rows = self.X.chunks[0]
        self.labels = checked["labels"].rechunk((rows,) + ((-1,) * (checked["labels"].ndim - 1)))
        self.weights = None if checked["weights"] is None else checked["weights"].rechunk((rows,))
        self.kwargs = dict(label_smoothing=checked["eps"], class_weight=checked["class_weight"],
                           ignore_index=checked["ignore_index"],
                           chunk_rows=checked["chunk_rows"], n_threads=n_threads or 1)
        self.offsets = np.cumsum((0,) + rows[:-1]).tolist()
        # X's NaN and infinities are looked for in the next evaluation's pass over each
        # block (scikit-learn's check, without a pass of its own)
        self.check_finite = bool(check_finite)

    # the same checks as the NumPy data's: they read only xp, n, n_features, num_classes, dtype
    parameters = core.Data.parameters

    def threads_held(self):
        return contextlib.nullcontext()   # the blocks run on the workers

    def _blocks(self):
        xs = self.X.to_delayed().ravel()
        ys = self.labels.to_delayed().ravel()
        ws = ([None] * len(xs) if self.weights is None else self.weights.to_delayed().ravel())
        return zip(xs, ys, ws, self.offsets)

    def graph(self, coef, intercept, want_grad, hessp=None):
        """A Delayed of ``(loss sum / denominator, grad or H v of coef, of intercept, counts
        of the blocks with a NaN and with an infinity in X (None unless check_finite))``."""
        from dask import delayed

        coef = delayed(coef, pure=True)
        intercept = None if intercept is None else delayed(intercept, pure=True)
        if hessp is not None:
            hessp = tuple(None if v is None else delayed(v, pure=True) for v in hessp)
        parts = [delayed(_block_share, pure=True)(x, y, w, offset, coef, intercept,
                                                  self.num_classes, want_grad, hessp,
                                                  self.kwargs, self.check_finite)
                 for x, y, w, offset in self._blocks()]
        while len(parts) > 1:
            parts = [delayed(_add_shares, pure=True)(*parts[i:i + _FAN_IN])
                     for i in range(0, len(parts), _FAN_IN)]
        return delayed(_finish, pure=True)(parts[0], self.reduction == "mean")

    def denominator(self):
        """A Delayed of what a "mean" divides by (1 for a "sum")."""
        from dask import delayed

        if self.reduction != "mean":
            return 1.0
        parts = [delayed(_block_total, pure=True)(y, w, offset, self.num_classes, self.dtype,
                                                  self.kwargs)
                 for _, y, w, offset in self._blocks()]
        return delayed(sum, pure=True)(parts)

    def run(self, coef, intercept, want_grad_coef, want_grad_X, row_losses=None, hessp=None):
        import dask

        if want_grad_X or row_losses is not None:
            raise NotImplementedError("run() computes the objective's sums only")
        (result,) = dask.compute(self.graph(coef, intercept, want_grad_coef, hessp))
        if self.check_finite:
            core.refuse_non_finite(result[3])
            self.check_finite = False
        if hessp is not None:
            return result[1], result[2]
        return result[0], result[1], result[2], None


def _block_data(X, labels, weights, offset, num_classes, kwargs):
    """One block's problem, on its chunks' own backend (NumPy or CuPy)."""
    backend = backend_for(X=None if checks.is_scipy_sparse(X) else X, labels=labels,
                          sample_weight=weights)
    return core.problem(X, None, labels, None, weights, backend=backend,
                        num_classes=num_classes, reduction="sum", row_offset=offset,
                        **kwargs)[0]


def _block_share(X, labels, weights, offset, coef, intercept, num_classes, want_grad, hessp,
                 kwargs, check_finite):
    flags = core.non_finite(X) if check_finite else None
    data = _block_data(X, labels, weights, offset, num_classes, kwargs)
    coef, intercept = data.parameters(coef, intercept)   # aligned: unpickled ones may not be
    if hessp is not None:
        hessp = data.parameters(*hessp)
        h_coef, h_intercept = data.run(coef, intercept, False, False, hessp=hessp)
        return data.total, 0.0, h_coef, h_intercept, flags
    total, g_coef, g_intercept, _ = data.run(coef, intercept, want_grad, False)
    return data.total, total, g_coef, g_intercept, flags


def _block_total(labels, weights, offset, num_classes, dtype, kwargs):
    X = np.empty((labels.shape[0], 0), dtype)
    return _block_data(X, labels, weights, offset, num_classes, kwargs).total


def _add_shares(*shares):
    def add(values):
        return None if values[0] is None else sum(values[1:], values[0])
    return tuple(add([share[k] for share in shares]) for k in range(5))


def _finish(share, mean):
    total, loss, g_coef, g_intercept, flags = share
    inv = (1.0 / total if total else 0.0) if mean else 1.0
    scaled = [None if g is None else g * np.asarray(inv, dtype=g.dtype)
              for g in (g_coef, g_intercept)]
    return (loss * inv, *scaled, flags)


def _lazy(delayed_value, shape, dtype):
    return _da().from_delayed(delayed_value, shape=shape, dtype=dtype)


def _problem(X, coef, labels, intercept=None, name="coef", **options):
    """The Dask problem and its parameters (computed here: they are small), checked."""
    coef, intercept = np.asarray(_computed(coef)), _computed(intercept)
    dtype = checks.linear_dtype(np.dtype(X.dtype), coef.dtype)
    data = DaskData(X, labels, coef.shape[1] if coef.ndim == 2 else 0, dtype, **options)
    return (data, dtype) + data.parameters(coef, intercept, name=name)


def linear_cross_entropy(X, coef, labels, intercept, return_grad, return_grad_X, options):
    """``fastxent.linear_cross_entropy`` on Dask arrays: lazy results."""
    from dask import delayed

    data, dtype, coef, intercept = _problem(X, coef, labels, intercept, **options)
    final = delayed(_with_penalty, pure=True)(data.graph(coef, intercept, return_grad), coef,
                                              data.l2, return_grad)
    loss = _lazy(final[0], (), np.float64)
    result = (loss,)
    if return_grad:
        result += (_lazy(final[1], coef.shape, dtype),
                   None if intercept is None else _lazy(final[2], intercept.shape, dtype))
    if return_grad_X:
        result += (_grad_X(data, coef, intercept),)
    return result if len(result) > 1 else loss


def _with_penalty(result, coef, l2, return_grad):
    loss, g_coef, g_intercept, _ = result
    if return_grad:
        g_coef = g_coef.copy()   # a task's result is not changed in place
    penalized = core.with_penalty(np, coef, l2, loss, g_coef, g_intercept, None, return_grad,
                                  False)
    loss, g_coef, g_intercept = penalized if return_grad else (penalized, g_coef, g_intercept)
    return np.asarray(loss, np.float64), g_coef, g_intercept   # 0-d: float() of the lazy loss


def _grad_X(data, coef, intercept):
    """The gradient of X, block by block, lazily: each block's pass with the whole
    problem's denominator."""
    from dask import delayed

    da = _da()
    denominator = data.denominator()
    coef_d = delayed(coef, pure=True)
    intercept_d = None if intercept is None else delayed(intercept, pure=True)
    blocks = []
    for (x, y, w, offset), rows in zip(data._blocks(), data.X.chunks[0]):
        value = delayed(_block_grad_X, pure=True)(x, y, w, offset, coef_d, intercept_d,
                                                  data.num_classes, denominator, data.kwargs)
        blocks.append(_lazy(value, (rows, data.n_features), data.dtype))
    return da.concatenate(blocks, axis=0) if blocks else da.empty((0, data.n_features))


def _block_grad_X(X, labels, weights, offset, coef, intercept, num_classes, denominator,
                  kwargs):
    rows = labels.shape[0]
    w = np.ones(rows) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / denominator if denominator else np.zeros(rows)
    data = _block_data(X, labels, w, offset, num_classes, kwargs)
    return data.run(*data.parameters(coef, intercept), False, True)[3]


def fused_linear(labels, features, weights, return_grad, chunk_rows, n_threads):
    """``fastxent.nn.fused_linear_cross_entropy`` on Dask arrays: lazy per-row losses (and
    gradients of their sum), one task per row block; the weights' gradient is the blocks'
    shares added by the tree."""
    from dask import delayed

    da = _da()
    data, dtype, weights, _ = _problem(features, weights, labels, name="weights",
                                       reduction="sum", chunk_rows=chunk_rows,
                                       n_threads=n_threads)
    weights_d = delayed(weights, pure=True)
    losses, grads, shares = [], [], []
    for (x, y, _, offset), rows in zip(data._blocks(), data.X.chunks[0]):
        part = delayed(_block_fused, pure=True, nout=3)(x, y, offset, weights_d,
                                                         data.num_classes, dtype, return_grad,
                                                         data.kwargs)
        losses.append(_lazy(part[0], (rows,), dtype))
        grads.append(_lazy(part[1], (rows, data.n_features), dtype))
        shares.append(part[2])
    loss = da.concatenate(losses) if losses else da.empty((0,), dtype)
    if not return_grad:
        return loss
    while len(shares) > 1:
        shares = [delayed(sum, pure=True)(shares[i:i + _FAN_IN])
                  for i in range(0, len(shares), _FAN_IN)]
    grad_weights = _lazy(shares[0], weights.shape, dtype)
    return loss, da.concatenate(grads, axis=0), grad_weights


def _block_fused(X, labels, offset, weights, num_classes, dtype, want_grad, kwargs):
    data = _block_data(X, labels, None, offset, num_classes, kwargs)
    weights, _ = data.parameters(weights, None, name="weights")
    rows = np.empty(data.n, np.float64)
    _, grad_weights, _, grad_X = data.run(weights, None, want_grad, want_grad, rows)
    return rows.astype(dtype), grad_X, grad_weights


def linear_cross_entropy_hessp(X, coef, labels, v_coef, v_intercept, intercept, options):
    """``fastxent.linear_cross_entropy_hessp`` on Dask arrays: lazy results."""
    from dask import delayed

    data, dtype, coef, intercept = _problem(X, coef, labels, intercept, **options)
    v_coef, v_intercept = core.direction(data, intercept, _computed(v_coef),
                                         _computed(v_intercept))
    final = data.graph(coef, intercept, False, hessp=(v_coef, v_intercept))
    l2 = data.l2
    h_coef = delayed(operator.add, pure=True)(final[1], l2 * v_coef) if l2 else final[1]
    return (_lazy(h_coef, coef.shape, dtype),
            None if intercept is None else _lazy(final[2], intercept.shape, dtype))


def _computed(a):
    """The parameters are small: a Dask one is computed here."""
    if a is not None and hasattr(a, "dask") and hasattr(a, "compute"):
        return a.compute()
    return a
