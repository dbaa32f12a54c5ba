import functools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastxent

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The tests must exercise the installed package (with its compiled kernels),
# not a bare source tree that happens to be on sys.path.
try:
    from fastxent._backends import _kernels  # noqa: F401
except ImportError as error:  # pragma: no cover - a setup mistake, said plainly
    raise pytest.UsageError(
        f"fastxent's compiled kernels are missing ({error}); install it first: pip install ."
    ) from None

DTYPES = [np.float16, np.float32, np.float64]


@pytest.fixture(params=_kernels.paths())
def path(request):
    """Each kernel path this CPU runs, switched in-process (``_kernels.set_path``)."""
    previous = _kernels.path()
    _kernels.set_path(request.param)
    yield request.param
    _kernels.set_path(previous)


@pytest.fixture(params=["rows", "lanes", "batch"])
def family(request):
    """Each kernel family (rows, rows in lanes, row batches), forced for every call where it
    can run (``_kernels.force_family``), whatever the planner would choose."""
    _kernels.force_family(request.param)
    yield request.param
    _kernels.force_family(None)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


@functools.lru_cache(maxsize=None)
def _python_runs_in_a_subprocess():
    try:
        return subprocess.run([sys.executable, "-c", "pass"], timeout=60).returncode == 0
    except OSError:  # an emulated interpreter (qemu-user without binfmt) cannot be exec'd
        return False


@pytest.fixture
def python_subprocess():
    """Skip where this Python cannot start itself as a subprocess (the emulated arm64 run)."""
    if not _python_runs_in_a_subprocess():
        pytest.skip("this Python cannot be started as a subprocess here (emulated?)")


@pytest.fixture(scope="module")
def cluster_client():
    """A dask.distributed LocalCluster of two worker processes, one thread each, for one
    test module (while it is open, it is Dask's default scheduler)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client
