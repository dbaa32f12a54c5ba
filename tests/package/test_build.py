"""The extension also builds, and computes the same results, without OpenMP."""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fastxent._backends import _kernels

SOURCE = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (SOURCE / "setup.py").exists(), reason="needs the source tree")
def test_serial_build_without_openmp(tmp_path, rng):
    pytest.importorskip("Cython")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(SOURCE / name, tmp_path)
    shutil.copytree(SOURCE / "fastxent", tmp_path / "fastxent",
                    ignore=shutil.ignore_patterns("*.so", "_kernels.c", "__pycache__"))
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", "lib",
         "--build-temp", "tmp"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "FASTXENT_NO_OPENMP": "1"})
    assert build.returncode == 0, build.stderr[-3000:]
    [built] = (tmp_path / "lib" / "fastxent" / "_backends").glob("_kernels*")
    spec = importlib.util.spec_from_file_location("_kernels", built)
    serial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serial)

    assert serial.build_info()["openmp"] is False
    logits = rng.standard_normal((500, 100)).astype(np.float32)
    labels = rng.integers(0, 100, 500)
    results = []
    for module in (serial, _kernels):
        loss, grad = np.empty(500, np.float32), np.empty_like(logits)
        module.sparse_rows(logits, labels, loss, grad, np.ones(1), 2)
        results.append((loss, grad))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
