"""The backends: one protocol, one registry keyed on the array type.

A backend runs the kernels on the rows the core hands it: 2-D ``(rows, classes)`` arrays
of its own array type, already checked. The core (``fastxent._core.plan``) is its only caller;
the Dask executor reaches a chunk's backend through ``chunk_backend``. Adding a backend is
one module with these primitives and one line in ``REGISTRY`` (docs/ADDING_A_BACKEND.md).
"""

import importlib
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

__all__ = ["REGISTRY", "Backend", "backend_for", "chunk_backend", "is_lazy"]

# The top-level package of an array type -> the backend module for it. NumPy inputs
# include what NumPy converts (lists, scalars).
REGISTRY = {
    "numpy": "fastxent._backends.cpu",
    "cupy": "fastxent._backends.cuda",
}
# Array libraries whose calls the core runs lazily, block by block (fastxent._dask).
LAZY = ("dask",)
_DEFAULT = "numpy"
_NAMES = {"numpy": "the CPU (NumPy)", "cupy": "the GPU (CuPy)"}


@runtime_checkable
class Backend(Protocol):
    """What every backend module provides (``fastxent._backends.cpu`` is the reference).

    Arrays are the backend's own type; ``labels`` rows are int64 and contiguous, ``scale``
    float64 of shape (rows,) or (1,); outputs are written in place.
    """

    xp: ModuleType
    """The array namespace (``numpy``, ``cupy``)."""
    checks_labels: bool
    """Whether labels are range-checked when the caller leaves ``validate`` as None."""

    def sparse_rows(self, logits, labels, loss, grad, scale, n_threads=None, *,
                    ignore_index=None, class_weight=None, label_smoothing=0.0) -> None:
        """Loss of each row and, into ``grad`` unless None, ``scale`` times its gradient,
        with PyTorch's options (``fastxent._core.options``), in one pass per row."""

    def dense_rows(self, logits, labels, loss, grad, labels_grad, a, b, scale,
                   n_threads=None, *, class_weight=None, mask=None) -> None:
        """Dense labels ``y' = a * labels + b`` (times ``class_weight``): loss
        ``sum(y') lse - y' . x``, gradient ``scale * (softmax * sum(y') - y')``, labels'
        gradient ``scale * a * (lse - x)`` (times ``class_weight``); ``mask`` (bool, the
        logits' shape) leaves entries out, and a row with none left is 0."""

    def first_invalid_label(self, labels, num_classes) -> int:
        """The index of the first label outside ``[0, num_classes)``, or -1."""

    def row_partials(self, logits, m, r) -> None:
        """Each row's partial normalizer ``(m, r)``, ``r = sum(exp(x - m)) - 1``."""

    def sparse_grad_given(self, logits, m, r, xt, local_labels, scale, grad) -> None:
        """A block of classes' sparse gradient from its rows' combined normalizers."""

    def dense_sums_given(self, logits, labels, m, a, b, sum_y, sum_yx) -> None:
        """A block of classes' ``sum(y')`` and ``sum(y' (x - m))`` given the rows' max."""

    def dense_grad_given(self, logits, labels, m, r, a, b, total, scale, grad) -> None:
        """A block of classes' dense gradient ``scale * (total * p - y')`` given the whole
        rows' normalizers ``(m, r)`` and ``total = sum(y')``, in the exact form of the row
        kernels (``fx_dense_grad_coefs``)."""

    def info(self) -> dict:
        """A description of the build (the ``info`` command prints it)."""

    # Optional, the default backend's only: ``fast_sparse(logits, labels, want_grad,
    # reduction_code, weights, out, grad_out, n_threads)``, a whole common call in one
    # kernel call, or None where the core's general path must run
    # (``fastxent._core.plan.fast_sparse``).


def _library(array: Any) -> str:
    return type(array).__module__.partition(".")[0]


def is_lazy(*arrays) -> bool:
    """Whether any argument is an array of a lazy library (Dask)."""
    return any(_library(a) in LAZY for a in arrays)


_LOADED: dict = {}


def _load(library: str) -> Backend:
    try:
        return _LOADED[REGISTRY[library]]
    except KeyError:
        module = _LOADED[REGISTRY[library]] = importlib.import_module(REGISTRY[library])
        return module


def backend_for(**arrays) -> Backend:
    """The backend of keyword ``name=array`` arguments (None ignored).

    Arrays of a registered type choose it; anything else (lists, scalars) goes with them,
    or to NumPy when there is nothing else.

    Raises
    ------
    TypeError
        If the arguments mix array types of two backends; the message names them.
    """
    found: dict[str, list[str]] = {}
    for name, array in arrays.items():
        library = _library(array)
        if library in REGISTRY and (library != _DEFAULT or getattr(array, "ndim", 0) > 0):
            found.setdefault(library, []).append(name)
    if len(found) > 1:
        order = sorted(found, key=lambda lib: lib == _DEFAULT)   # the accelerator first
        parts = [f"{', '.join(found[lib])} on {_NAMES.get(lib, lib)}" for lib in order]
        raise TypeError(f"arguments mix devices: {', '.join(parts)}; move them to one device "
                        "(cupy.asarray or cupy.asnumpy)")
    return _load(next(iter(found), _DEFAULT))


def default_backend() -> Backend:
    """The backend of lists, scalars and NumPy arrays (the CPU)."""
    return _load(_DEFAULT)


def chunk_backend(chunk) -> Backend:
    """The backend of one computed chunk of a lazy array."""
    library = _library(chunk)
    return _load(library if library in REGISTRY else _DEFAULT)
