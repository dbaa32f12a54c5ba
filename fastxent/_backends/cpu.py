"""The CPU backend: the compiled kernels of ``fastxent._backends._kernels``, with the
interface of ``fastxent._backends.Backend``; labels are always range-checked here."""

import pathlib

import numpy as xp

try:
    from ._kernels import build_info as info
    from ._kernels import dense_rows as _dense_rows
    from ._kernels import dense_grad_given as _dense_grad_given
    from ._kernels import dense_sums_given as _dense_sums_given
    from ._kernels import fast_sparse, first_invalid_label, row_partials
    from ._kernels import sparse_grad_given as _sparse_grad_given
    from ._kernels import sparse_rows as _sparse_rows
except ModuleNotFoundError as error:  # pragma: no cover - depends on how it was installed
    here = pathlib.Path(__file__).resolve().parent
    raise ImportError(
        f"fastxent's compiled kernels are missing from {here}. If that is a source "
        "checkout, either build it in place (pip install -e .) or run Python from "
        "another directory so that the installed fastxent is imported."
    ) from error

checks_labels = True

# Entries per kernel call. The kernels run without the GIL and do not look at
# signals; a larger call is cut into blocks of rows, and Python handles Ctrl-C
# between blocks (a few tens of milliseconds apart), leaving the outputs partly written.
INTERRUPT_ENTRIES = 1 << 26


def _blocks(logits, *per_row):
    """Row blocks of ``logits`` (N, C) and of the per-row arrays (None and
    single-entry scales are passed whole)."""
    rows, cols = logits.shape
    step = max(1, INTERRUPT_ENTRIES // max(cols, 1))
    if rows <= step:
        yield (logits,) + per_row
        return
    for start in range(0, rows, step):
        part = slice(start, start + step)
        yield (logits[part],) + tuple(
            a if a is None or (a.ndim == 1 and a.shape[0] == 1 and rows != 1) else a[part]
            for a in per_row)


def sparse_rows(logits, labels, loss, grad, scale, n_threads=None, *, ignore_index=None,
                class_weight=None, label_smoothing=0.0):
    """The kernel's ``sparse_rows``, in blocks of rows (see ``INTERRUPT_ENTRIES``)."""
    for x, t, out, g, s in _blocks(logits, labels, loss, grad, scale):
        _sparse_rows(x, t, out, g, s, n_threads, ignore_index=ignore_index,
                     class_weight=class_weight, label_smoothing=label_smoothing)


def dense_rows(logits, labels, loss, grad, labels_grad, a, b, scale, n_threads=None, *,
               class_weight=None, mask=None):
    """The kernel's ``dense_rows``, in blocks of rows (see ``INTERRUPT_ENTRIES``)."""
    for x, y, out, g, gy, s, m in _blocks(logits, labels, loss, grad, labels_grad, scale, mask):
        _dense_rows(x, y, out, g, gy, a, b, s, n_threads, class_weight=class_weight, mask=m)

def _aligned(a):
    """An input read as whole words, copied when it is not aligned: the row partials of a
    split class axis come from other Dask tasks, unpickled at any byte offset."""
    return a if a is None or a.flags.aligned else a.copy()


def sparse_grad_given(logits, m, r, xt, local_labels, scale, grad):
    """The kernel's ``sparse_grad_given``, its per-row inputs aligned."""
    _sparse_grad_given(logits, _aligned(m), _aligned(r), _aligned(xt), _aligned(local_labels),
                       _aligned(scale), grad)


def dense_sums_given(logits, labels, m, a, b, sum_y, sum_yx):
    """The kernel's ``dense_sums_given``, its per-row input aligned."""
    _dense_sums_given(logits, labels, _aligned(m), a, b, sum_y, sum_yx)


def dense_grad_given(logits, labels, m, r, a, b, total, scale, grad):
    """The kernel's ``dense_grad_given``, its per-row inputs aligned."""
    _dense_grad_given(logits, labels, _aligned(m), _aligned(r), a, b, _aligned(total),
                      _aligned(scale), grad)


__all__ = ["checks_labels", "dense_grad_given", "dense_rows", "dense_sums_given",
           "fast_sparse", "first_invalid_label", "info", "row_partials", "sparse_grad_given", "sparse_rows",
           "xp"]
