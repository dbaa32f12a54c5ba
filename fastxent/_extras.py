"""PyTorch-style options for integer labels: ``ignore_index``, ``class_weight`` and
``label_smoothing``, on top of the fused sparse kernel (TensorFlow has none of them).

For a row with logits ``x``, target ``t``, ``lse = logsumexp(x)`` and
``p = softmax(x)``, with ``a = 0`` where the label is ``ignore_index`` (else 1),
class weights ``u`` (all 1 without ``class_weight``), ``U = sum(u)``, smoothing
``eps`` and ``C`` classes, the loss is PyTorch's ``cross_entropy``::

    loss = a * ((1 - eps) * u[t] * (lse - x[t]) + eps / C * sum_j u[j] * (lse - x[j]))
    dloss/dx = a * (k * p - (1 - eps) * u[t] * onehot(t) - eps / C * u),
    k = (1 - eps) * u[t] + eps * U / C

The kernel computes ``k * (p - onehot(t))`` (its per-row scale) in its one pass;
with smoothing, one more pass adds ``eps / C * (U * onehot(t) - u)`` and the loss
needs ``x . u`` (read before the kernel, which may overwrite the logits). The
"mean" of a reduction divides by ``sum(weight * a * u[t])``, as PyTorch does.
"""

import numpy as np

from ._checks import label_smoothing_value


def _class_weight_array(class_weight, num_classes, xp):
    u = xp.asarray(class_weight)
    if u.dtype.kind not in "biuf":
        raise TypeError(f"class_weight must be real numbers, got dtype {u.dtype}")
    if u.shape != (num_classes,):
        raise ValueError(f"class_weight must have one weight per class, shape "
                         f"({num_classes},); got shape {u.shape}")
    u = u.astype(np.float64)
    if not bool(xp.all(xp.isfinite(u))):
        raise ValueError("class_weight must be finite")
    return u


def _ignore_index_value(ignore_index):
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    return int(ignore_index)


class SparseExtras:
    """The options for one call, over flattened int64 label rows.

    Parameters
    ----------
    xp : module
        The array namespace (NumPy or CuPy).
    label_rows : ndarray of int64, shape (N,)
        The labels as given (an ignored row may hold any value).
    num_classes : int
    ignore_index, class_weight, label_smoothing
        As the public functions take them.
    """

    def __init__(self, xp, label_rows, num_classes, ignore_index=None, class_weight=None,
                 label_smoothing=0.0):
        self.xp = xp
        self.num_classes = num_classes
        self.eps = label_smoothing_value(label_smoothing)
        ignore_index = _ignore_index_value(ignore_index)
        self.keep = None if ignore_index is None else label_rows != ignore_index
        # ignored rows get a harmless label for the kernel; their results are zeroed
        self.labels = label_rows if self.keep is None else xp.where(self.keep, label_rows, 0)
        self.u = (None if class_weight is None
                  else _class_weight_array(class_weight, num_classes, xp))
        self.u_t = None if self.u is None else self.u[self.labels]
        self.total_u = float(num_classes) if self.u is None else float(xp.sum(self.u))
        self.active = self.keep is not None or self.u is not None or self.eps > 0

    def rows(self, start, stop):
        """The options for rows ``start:stop`` (a block of a longer call)."""
        part = object.__new__(SparseExtras)
        part.__dict__.update(self.__dict__)
        part.labels = self.labels[start:stop]
        part.keep = None if self.keep is None else self.keep[start:stop]
        part.u_t = None if self.u_t is None else self.u_t[start:stop]
        return part

    @staticmethod
    def any_given(ignore_index, class_weight, label_smoothing):
        return ignore_index is not None or class_weight is not None or label_smoothing not in (0, 0.0, None)

    def times_keep(self, values):
        """``values`` (a scalar or per-row array) times ``a``: zero on ignored rows."""
        if self.keep is None:
            return values
        return self.xp.where(self.keep, values, 0.0)

    def row_mass(self, weight=1.0):
        """``weight * a * u[t]`` per row (float64): what a mean divides by."""
        mass = weight if self.u_t is None else weight * self.u_t
        mass = self.xp.broadcast_to(self.xp.asarray(mass, dtype=np.float64), self.labels.shape)
        return self.times_keep(mass)

    def kernel_scale(self, weight=1.0):
        """The kernel's per-row gradient scale ``weight * a * k`` (shape (N,) or (1,))."""
        xp = self.xp
        k = (1.0 - self.eps) * (1.0 if self.u_t is None else self.u_t) + self.eps * self.total_u / self.num_classes
        scale = xp.asarray(self.times_keep(xp.asarray(weight, dtype=np.float64) * k),
                           dtype=np.float64)
        return xp.ascontiguousarray(scale.reshape(-1))

    def before_kernel(self, x_rows):
        """What the loss needs from the logits before the kernel may overwrite them:
        ``x . u - U * x[t]`` per row (float64), with smoothing; else None."""
        if self.eps == 0:
            return None
        xp = self.xp
        x_t = xp.take_along_axis(x_rows, self.labels[:, None], axis=1)[:, 0].astype(np.float64)
        u = xp.ones(self.num_classes) if self.u is None else self.u
        return x_rows.astype(np.float64, copy=False) @ u - self.total_u * x_t

    def row_loss(self, ce, spread):
        """The per-row loss (float64) from the kernel's ``lse - x[t]``."""
        ce = ce.astype(np.float64)
        loss = ce if self.u_t is None else ce * self.u_t
        if self.eps:
            loss = (1.0 - self.eps) * loss + self.eps / self.num_classes * (self.total_u * ce - spread)
        if self.keep is None:
            return loss
        return self.xp.where(self.keep, loss, 0.0)

    def fix_grad(self, grad_rows, weight=1.0):
        """Turn the kernel's ``weight * a * k * (p - onehot)`` (in place, (N, C)) into the
        gradient above; ignored rows become exactly 0."""
        xp = self.xp
        if self.eps:
            w = self.times_keep(xp.broadcast_to(xp.asarray(weight, dtype=np.float64),
                                                 self.labels.shape))
            coef = w * (self.eps / self.num_classes)
            u = 1.0 if self.u is None else self.u[None, :]
            grad_rows -= (coef[:, None] * u).astype(grad_rows.dtype)
            rows = xp.arange(grad_rows.shape[0])
            grad_rows[rows, self.labels] += (coef * self.total_u).astype(grad_rows.dtype)
        if self.keep is not None:
            grad_rows[~self.keep] = 0


def check_labels(labels, num_classes, backend, validate, ignore_index):
    """Range-check the labels of the rows not ignored (as ``_checks.sparse_label_rows``);
    returns all the label rows, ignored ones included, as int64."""
    from ._checks import int64_rows, sparse_label_rows

    xp = backend.xp
    ignore_index = _ignore_index_value(ignore_index)
    checked = labels if ignore_index is None else xp.where(labels == ignore_index, 0, labels)
    sparse_label_rows(checked, num_classes, backend, validate)
    return int64_rows(labels, xp)


def sparse_call(backend, logits, extras, weight=1.0, *, return_grad, grad_out, n_threads):
    """Per-row losses (float64, shape (N,)) and the gradient of ``sum(weight * loss)``
    (in ``logits``' shape, into ``grad_out`` when given) for logits with the class axis
    last, in one kernel call plus the fix-ups above."""
    from . import _rows
    from ._checks import compute_dtype

    xp = backend.xp
    num_classes = logits.shape[-1]
    x_rows = logits.reshape(-1, num_classes)
    spread = extras.before_kernel(x_rows)
    ce, grad, _ = _rows.fused(backend, logits, extras.labels, sparse=True,
                              loss_dtype=compute_dtype(logits.dtype), want_grad=return_grad,
                              grad_out=grad_out, scale=extras.kernel_scale(weight),
                              n_threads=n_threads)
    loss = extras.row_loss(ce.reshape(-1), spread)
    if return_grad and (extras.eps or extras.keep is not None):
        rows = _rows._reshape_view(xp, grad, x_rows.shape)
        if rows is not None:
            extras.fix_grad(rows, weight)
        else:  # a grad_out whose rows are no view: fix a copy, write it back
            rows = grad.reshape(x_rows.shape)
            extras.fix_grad(rows, weight)
            grad[...] = rows.reshape(grad.shape)
    return loss, grad
