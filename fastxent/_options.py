"""PyTorch's options of integer labels: ``ignore_index``, ``class_weight``, ``label_smoothing``.

For a row with logits ``x``, target ``t``, ``lse = logsumexp(x)`` and ``p = softmax(x)``,
with ``a = 0`` where the label is ``ignore_index`` (else 1), class weights ``u`` (all 1
without ``class_weight``), ``U = sum(u)``, smoothing ``eps`` and ``C`` classes, the loss is
PyTorch's ``cross_entropy``::

    loss = a * ((1 - eps) * u[t] * (lse - x[t]) + eps / C * sum_j u[j] * (lse - x[j]))
    dloss/dx = a * (k * p - (1 - eps) * u[t] * onehot(t) - eps / C * u),
    k = (1 - eps) * u[t] + eps * U / C

Every one of them is a coefficient of the CPU kernels' one pass (the generalized sparse
row of ``_src/fx_kernels_impl.h``); ``compose_sparse_rows`` builds the same result from a
backend's plain kernel for a backend without them (the GPU's, today). Class weights of
label distributions (PyTorch's ``weight`` with probability targets) multiply the labels:
``loss = -sum_j u_j y'_j log p_j``; ``compose_dense_rows`` is their composition. The "mean" of a
reduction divides by ``sum(weight * a * u[t])``, as PyTorch does.

A leaf module: it imports NumPy and ``_checks`` only, so the core and the backends can
both use it.
"""

import numpy as np

from ._checks import contiguous, label_smoothing_value, real_array


class SparseOptions:
    """The checked options of one call.

    Parameters
    ----------
    ignore_index : int or None
    class_weight : array_like of shape ``(num_classes,)`` or None
    label_smoothing : float in [0, 1]
    num_classes : int
    xp : module
        The array namespace of the call (NumPy or CuPy): ``class_weight`` lives there.
    """

    __slots__ = ("ignore_index", "class_weight", "eps", "num_classes", "xp")

    def __init__(self, ignore_index, class_weight, label_smoothing, num_classes, xp=np):
        self.xp = xp
        self.num_classes = num_classes
        self.eps = label_smoothing_value(label_smoothing)
        self.ignore_index = _ignore_index_value(ignore_index)
        self.class_weight = (None if class_weight is None
                             else class_weight_array(class_weight, num_classes, xp))

    def on(self, xp):
        """These options with the class weights on the namespace ``xp`` (a Dask block's
        chunk: NumPy or CuPy)."""
        if xp is self.xp:
            return self
        moved = SparseOptions.__new__(SparseOptions)
        moved.xp, moved.num_classes, moved.eps = xp, self.num_classes, self.eps
        moved.ignore_index = self.ignore_index
        moved.class_weight = None if self.class_weight is None else xp.asarray(self.class_weight)
        return moved

    @staticmethod
    def given(ignore_index, class_weight, label_smoothing):
        """Whether any option differs from its default (a fast test, before any check)."""
        return (ignore_index is not None or class_weight is not None
                or label_smoothing not in (0, 0.0, None))

    def kernel_options(self):
        """The keyword arguments of a backend's ``sparse_rows``."""
        return {"ignore_index": self.ignore_index, "class_weight": self.class_weight,
                "label_smoothing": self.eps}

    def keep(self, label_rows):
        """``a`` per row as booleans, or None when no row is ignored by construction."""
        return None if self.ignore_index is None else label_rows != self.ignore_index

    def row_mass(self, label_rows, weights=1.0):
        """``weights * a * u[t]`` per row (float64): what a "mean" divides by."""
        xp = self.xp
        keep = self.keep(label_rows)
        mass = xp.broadcast_to(xp.asarray(weights, dtype=np.float64), label_rows.shape)
        if self.class_weight is not None:
            safe = label_rows if keep is None else xp.where(keep, label_rows, 0)
            mass = mass * self.class_weight[safe]
        return mass if keep is None else xp.where(keep, mass, 0.0)

    def curvature(self, label_rows, weights=1.0):
        """``weights * a * k`` per row: the factor of the logits Hessian
        ``k (diag(p) - p p^T)`` (``fastxent.linear``)."""
        total = (float(self.num_classes) if self.class_weight is None
                 else float(self.xp.sum(self.class_weight)))
        mass = self.row_mass(label_rows, weights)
        keep = self.keep(label_rows)
        spread = self.xp.broadcast_to(
            self.xp.asarray(weights, dtype=np.float64) * (self.eps * total / self.num_classes),
            label_rows.shape)
        if keep is not None:
            spread = self.xp.where(keep, spread, 0.0)
        return (1.0 - self.eps) * mass + spread


def class_weight_array(class_weight, num_classes, xp=np):
    """``class_weight`` checked (real, finite, one per class) as contiguous float64."""
    u = real_array(xp.asarray(class_weight), "class_weight")
    if u.shape != (num_classes,):
        raise ValueError(f"class_weight must have one weight per class, shape "
                         f"({num_classes},); got shape {u.shape}")
    u = contiguous(u, np.float64, xp)
    if not bool(xp.all(xp.isfinite(u))):
        raise ValueError("class_weight must be finite")
    return u


def _ignore_index_value(ignore_index):
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    return int(ignore_index)


def compose_sparse_rows(plain_sparse_rows, xp, logits, labels, loss, grad, scale, n_threads,
                        ignore_index, class_weight, label_smoothing):
    """A backend's ``sparse_rows`` with the options, from its plain kernel.

    The plain kernel writes ``k (lse - x_t)``'s ``lse - x_t`` and ``scale * k * (p - onehot)``
    in its pass; the loss's spread needs ``x . u`` (read before the kernel, which may
    overwrite the logits) and the gradient one more pass, ``- eps / C (u - U onehot)``.
    Those passes make temporaries the size of the logits: a backend whose kernel takes
    the options (the CPU's) has none.
    """
    rows, num_classes = logits.shape
    eps = float(label_smoothing)
    keep = None if ignore_index is None else labels != ignore_index
    t = labels if keep is None else xp.where(keep, labels, 0)
    u = class_weight
    u_t = 1.0 if u is None else u[t]
    total = float(num_classes) if u is None else float(xp.sum(u))
    k = (1.0 - eps) * u_t + eps * total / num_classes
    kernel_scale = xp.broadcast_to(xp.asarray(scale, dtype=np.float64) * k, (rows,))
    if keep is not None:
        kernel_scale = xp.where(keep, kernel_scale, 0.0)
    spread = None
    if eps:
        x_t = xp.take_along_axis(logits, t[:, None], axis=1)[:, 0].astype(np.float64)
        weights = xp.ones(num_classes) if u is None else u
        spread = logits.astype(np.float64, copy=False) @ weights - total * x_t
    ce = xp.empty(rows, np.float64)
    plain_sparse_rows(logits, t, ce, grad, xp.ascontiguousarray(kernel_scale), n_threads)
    row = ce * u_t
    if eps:
        row = (1.0 - eps) * row + eps / num_classes * (total * ce - spread)
    if keep is not None:
        row = xp.where(keep, row, 0.0)
    loss[...] = row
    if grad is None:
        return
    if eps:
        coef = xp.broadcast_to(xp.asarray(scale, dtype=np.float64), (rows,)) * (eps / num_classes)
        if keep is not None:
            coef = xp.where(keep, coef, 0.0)
        grad -= (coef[:, None] * (1.0 if u is None else u[None, :])).astype(grad.dtype)
        grad[xp.arange(rows), t] += (coef * total).astype(grad.dtype)
    if keep is not None:
        grad[~keep] = 0


def compose_dense_rows(plain_dense_rows, xp, logits, labels, loss, grad, labels_grad, a, b,
                       scale, n_threads, class_weight=None, mask=None):
    """A backend's ``dense_rows`` with class weights and a mask of entries, from its plain
    kernel: the weighted labels ``u * (a * labels + b)`` and the masked logits (-inf where
    masked, labels 0 there) are formed whole (temporaries the size of the logits, which the
    CPU's kernel does without), then the plain kernel runs with them; a row with no entry
    kept is 0."""
    weighted = a * labels.astype(np.float64) + b
    if class_weight is not None:
        weighted = weighted * class_weight
    if mask is not None:
        weighted = xp.where(mask, weighted, 0.0)
        logits = xp.where(mask, logits, -np.inf).astype(logits.dtype)
    plain_dense_rows(logits, weighted.astype(labels.dtype), loss, grad, labels_grad, 1.0, 0.0,
                     scale, n_threads)
    if labels_grad is not None:
        labels_grad *= (a * (1.0 if class_weight is None else class_weight)).astype(
            labels_grad.dtype)
    if mask is not None:
        empty = ~xp.any(mask, axis=1)
        loss[empty] = 0
        for g in (grad, labels_grad):
            if g is not None:
                g[empty] = 0
        if labels_grad is not None:
            labels_grad[~mask] = 0
