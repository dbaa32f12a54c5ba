"""PyTorch's options of integer labels: ``ignore_index``, ``class_weight``, ``label_smoothing``.

For a row with logits ``x``, target ``t``, ``lse = logsumexp(x)`` and ``p = softmax(x)``,
with ``a = 0`` where the label is ``ignore_index`` (else 1), class weights ``u`` (all 1
without ``class_weight``), ``U = sum(u)``, smoothing ``eps`` and ``C`` classes, the loss is
PyTorch's ``cross_entropy``::

    loss = a * ((1 - eps) * u[t] * (lse - x[t]) + eps / C * sum_j u[j] * (lse - x[j]))
    dloss/dx = a * (k * p - (1 - eps) * u[t] * onehot(t) - eps / C * u),
    k = (1 - eps) * u[t] + eps * U / C

Every one of them is a coefficient of the kernels' one pass (the generalized sparse row of
``_backends/_src/fx_kernels_impl.h``). The "mean" of a reduction divides by
``sum(weight * a * u[t])``, as PyTorch does. A leaf module: it imports NumPy only.
"""

import numpy as np


class SparseOptions:
    """The options of one call, checked (``fastxent._core.checks.sparse_options``).

    Parameters
    ----------
    ignore_index : int or None
    class_weight : float64 array of shape ``(num_classes,)``, or None
    eps : float in [0, 1]
        The label smoothing.
    num_classes : int
    xp : module
        The array namespace of ``class_weight`` (NumPy or CuPy).
    """

    __slots__ = ("ignore_index", "class_weight", "eps", "num_classes", "xp")

    def __init__(self, ignore_index, class_weight, eps, num_classes, xp=np):
        self.ignore_index, self.class_weight, self.eps = ignore_index, class_weight, eps
        self.num_classes, self.xp = num_classes, xp

    def on(self, xp):
        """These options with the class weights on the namespace ``xp`` (a Dask block's
        chunk: NumPy or CuPy)."""
        if xp is self.xp:
            return self
        return SparseOptions(self.ignore_index,
                             None if self.class_weight is None else xp.asarray(self.class_weight),
                             self.eps, self.num_classes, xp)

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
        xp = self.xp
        total = (float(self.num_classes) if self.class_weight is None
                 else float(xp.sum(self.class_weight)))
        spread = xp.broadcast_to(
            xp.asarray(weights, dtype=np.float64) * (self.eps * total / self.num_classes),
            label_rows.shape)
        keep = self.keep(label_rows)
        if keep is not None:
            spread = xp.where(keep, spread, 0.0)
        return (1.0 - self.eps) * self.row_mass(label_rows, weights) + spread
