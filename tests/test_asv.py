"""The asv suite is well formed (``asv check``), as CI runs it."""

import pathlib
import shutil
import subprocess

import pytest

SUITE = pathlib.Path(__file__).resolve().parent.parent / "asv_benchmarks"


@pytest.mark.skipif(shutil.which("asv") is None or not SUITE.exists(),
                    reason="needs asv and the source tree")
def test_asv_check():
    run = subprocess.run(["asv", "check", "--python=same"], cwd=SUITE, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No problems found" in run.stdout
