"""The backend module for ``fxtoy`` arrays, written as docs/ADDING_A_BACKEND.md says: the
primitives of ``fastxent._backends.Backend``, here by handing the rows to the CPU kernels
(a real backend would move them to its device), counting what it is asked."""

import numpy as xp

from fastxent._backends import cpu as _cpu

checks_labels = True
calls = []


def _counted(name):
    def primitive(*args, **kwargs):
        calls.append(name)
        return getattr(_cpu, name)(*args, **kwargs)

    primitive.__name__ = name
    return primitive


sparse_rows = _counted("sparse_rows")
dense_rows = _counted("dense_rows")
first_invalid_label = _counted("first_invalid_label")
row_partials = _counted("row_partials")
sparse_grad_given = _counted("sparse_grad_given")
dense_sums_given = _counted("dense_sums_given")
dense_grad_given = _counted("dense_grad_given")


def info():
    return {"name": "fxtoy (the CPU kernels)"}
