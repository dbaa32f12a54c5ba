"""``python -m fastxent bench`` runs, checks its results and writes its figures."""

import json
import shutil
import subprocess
import sys

from fastxent import _kernels


def test_bench_runs_and_reports(tmp_path, python_subprocess):
    figures = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "fastxent", "bench", "--shapes", "64x10,8x3000:float64",
         "--min-time", "0.001", "--no-peers", "--json", str(figures)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    path = _kernels.path()
    assert f"| 64x10 float32 | sparse | loss | 1 | {path} |" in run.stdout
    assert f"| 8x3000 float64 | dense | loss+grad | all | {path} |" in run.stdout
    assert "reference check: 16 of 16 results match" in run.stdout
    assert "CPU: " in run.stdout and "kernel paths timed: " + path in run.stdout
    assert "one thread" in run.stderr  # progress goes to stderr
    report = json.loads(figures.read_text())
    rows = report["rows"]
    assert len(rows) == 16 and all(r["matches_reference"] for r in rows)
    assert {r["threads"] for r in rows} == {"1", "all"}
    assert {r["path"] for r in rows} == {path} and report["paths"] == [path]
    assert report["cpu"]["model"] and report["kernel"]["path"] == path


def test_bench_times_every_path(tmp_path, python_subprocess):
    figures = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "fastxent", "bench", "--shapes", "40x7", "--min-time", "0.001",
         "--no-peers", "--threads", "1", "--path", "all", "--json", str(figures)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(figures.read_text())["rows"]
    assert [r["path"] for r in rows[::4]] == _kernels.paths()       # four cases per path
    assert len(rows) == 4 * len(_kernels.paths()) and all(r["matches_reference"] for r in rows)
    for path in _kernels.paths():
        assert f"kernel path {path}:" in run.stdout


def test_bench_refuses_a_path_this_cpu_lacks(tmp_path, python_subprocess):
    run = subprocess.run([sys.executable, "-m", "fastxent", "bench", "--path", "avx1024"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2 and "--path 'avx1024'" in run.stderr


def test_peers_include_torch_compile_where_torch_and_a_compiler_are(monkeypatch):
    from fastxent import _bench

    peers = _bench.installed_peers()
    assert list(peers) == [p for p in _bench.PEERS if p in peers]
    if "torch" in peers and shutil.which("g++"):
        assert "torch.compile" in peers


def test_fastest_peer_is_the_smallest_time():
    from fastxent._bench import fastest_peer

    row = {"torch_s": 3.0, "torch.compile_s": 1.0, "jax_s": 2.0}
    assert fastest_peer(row, ["torch", "torch.compile", "jax"]) == ("torch.compile", 1.0)
    assert fastest_peer({}, ["torch"]) == (None, None)


def test_bench_rejects_bad_shapes(tmp_path, python_subprocess):
    run = subprocess.run([sys.executable, "-m", "fastxent", "bench", "--shapes", "ten"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode != 0


def test_gpu_bench_says_what_it_needs(tmp_path, python_subprocess):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        import pytest
        pytest.skip("CuPy is installed: tests/test_gpu.py covers the GPU")
    run = subprocess.run([sys.executable, "-m", "fastxent", "bench", "--device", "gpu"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2
    assert "needs CuPy and a CUDA GPU" in run.stderr


def test_peers_are_capped_to_the_timed_paths_isa_class(monkeypatch):
    from fastxent._bench import child_environment

    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = child_environment("avx2", "avx512", "1")
    assert env["FASTXENT_CPU_PATH"] == "avx2" and env["OMP_NUM_THREADS"] == "1"
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_max_isa=AVX2"
    best = child_environment("avx512", "avx512", "all")
    assert best["FASTXENT_CPU_PATH"] == "avx512"
    assert "ATEN_CPU_CAPABILITY" not in best and "OMP_NUM_THREADS" not in best
    assert best["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
