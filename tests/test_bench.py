"""``python -m fastxent bench`` runs, checks its results and writes its figures."""

import json
import subprocess
import sys


def test_bench_runs_and_reports(tmp_path):
    figures = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "fastxent", "bench", "--shapes", "64x10,8x3000:float64",
         "--min-time", "0.001", "--no-peers", "--json", str(figures)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| 64x10 float32 | sparse | loss | 1 |" in run.stdout
    assert "| 8x3000 float64 | dense | loss+grad | all |" in run.stdout
    assert "reference check: 16 of 16 results match" in run.stdout
    assert "one thread" in run.stderr  # progress goes to stderr
    rows = json.loads(figures.read_text())["rows"]
    assert len(rows) == 16 and all(r["matches_reference"] for r in rows)
    assert {r["threads"] for r in rows} == {"1", "all"}


def test_bench_rejects_bad_shapes(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fastxent", "bench", "--shapes", "ten"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode != 0


def test_gpu_bench_says_what_it_needs(tmp_path):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        import pytest
        pytest.skip("CuPy is installed: tests/test_gpu.py covers the GPU")
    run = subprocess.run([sys.executable, "-m", "fastxent", "bench", "--device", "gpu"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2
    assert "needs CuPy and a CUDA GPU" in run.stderr
