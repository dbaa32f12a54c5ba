"""``python -m fastxent bench`` runs, checks its results and writes its figures."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fastxent._backends import _kernels
from fastxent._bench import report as _bench_report
from fastxent._bench import run as _bench


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
    assert "all thr / 1 thr" in run.stdout                     # the thread scaling column
    # progress goes to stderr: each result as it finishes, with the time left
    assert "[1/16] 64x10 float32 sparse loss (1 thread" in run.stderr
    assert "[16/16] 8x3000 float64 dense loss+grad (all threads" in run.stderr
    assert "left]" in run.stderr
    report = json.loads(figures.read_text())
    rows = report["rows"]
    assert report["complete"] is True
    assert len(rows) == 16 and all(r["matches_reference"] for r in rows)
    assert {r["threads"] for r in rows} == {"1", "all"}
    assert {r["path"] for r in rows} == {path} and report["paths"] == [path]
    assert report["cpu"]["model"] and report["kernel"]["path"] == path
    assert report["versions"]["fastxent"] and report["versions"]["numpy"] == np.__version__
    assert report["date"].startswith("20") and "--json" in report["command"]
    for row in rows:
        for name in ("fastxent", "numpy", "read"):
            t = row["times"][name]
            assert 0 < t["min"] <= t["median"] == row[f"{name}_s"] <= t["max"] and t["runs"] >= 3


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
        assert f"(kernel path {path})" in run.stdout


def test_bench_sweeps_the_class_count_and_times_the_small_calls(tmp_path, python_subprocess):
    figures = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "fastxent", "bench", "--parts", "sweep,calls", "--classes",
         "7,40", "--dtypes", "float32,float16", "--sweep-logits", "2000", "--min-time",
         "0.001", "--no-peers", "--json", str(figures)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(figures.read_text())["rows"]
    sweep = [r for r in rows if r["part"] == "sweep"]
    calls = [r for r in rows if r["part"] == "calls"]
    # 2 class counts x 2 dtypes x loss and loss + gradient, all on one thread
    assert len(sweep) == 8 and {r["threads"] for r in sweep} == {"1"}
    assert {(r["shape"][1], r["dtype"]) for r in sweep} == {
        (7, "float32"), (7, "float16"), (40, "float32"), (40, "float16")}
    assert all(r["matches_reference"] and r["labels"] == "sparse" for r in sweep)
    assert {r["form"] for r in calls} >= {"nn, loss (the plain call)", "nn, grad_out=",
                                          "nn, out=", "nn, int32 labels",
                                          "losses, reduction='mean'"}
    assert all(r["call_s"] > 0 for r in calls)
    assert "| 7 | 285 | loss | " in run.stdout and "float16 x f32" in run.stdout
    assert "| nn, grad_out= | " in run.stdout and "The small calls" in run.stdout
    assert "The workload" not in run.stdout


@pytest.mark.parametrize("arguments, message", [
    (["--parts", "sweep,everything"], "--parts: unknown everything"),
    (["--dtypes", "int32"], "--dtypes"),
    (["--classes", "10,0"], "--classes"),
    (["--shapes", "0x10"], "--shapes"),
    (["--min-time", "-1"], "--min-time must be positive"),
])
def test_bench_refuses_bad_arguments_with_a_message(capsys, arguments, message):
    with pytest.raises(SystemExit) as stop:
        _bench.parse_args(arguments)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_quick_sweeps_fewer_classes_and_dtypes():
    from fastxent._bench import workload

    _, args = _bench.parse_args(["--quick"])
    assert args.parts == ["workload", "sweep", "calls"]
    assert args.classes == list(workload.QUICK_CLASSES)
    assert args.dtypes == list(workload.QUICK_DTYPES)
    assert all(shape[0] * shape[1] <= workload.QUICK_LOGITS for shape, _ in args.sweep)
    assert _bench.parse_args(["--shapes", "64x10"])[1].parts == ["workload"]


def test_bench_refuses_a_path_this_cpu_lacks(tmp_path, python_subprocess):
    run = subprocess.run([sys.executable, "-m", "fastxent", "bench", "--path", "avx1024"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2 and "--path 'avx1024'" in run.stderr


def test_peers_include_torch_compile_where_torch_and_a_compiler_are(monkeypatch):
    from fastxent._bench import run as _bench

    peers = _bench.installed_peers()
    assert list(peers) == [p for p in _bench.PEERS if p in peers]
    if "torch" in peers and shutil.which("g++"):
        assert "torch.compile" in peers


def test_fastest_peer_is_the_smallest_time():
    from fastxent._bench.report import fastest_peer

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
    from fastxent._bench.run import child_environment

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


def test_bench_plots_speedups(tmp_path, python_subprocess):
    pytest.importorskip("matplotlib")
    png = tmp_path / "speedups.png"
    run = subprocess.run(
        [sys.executable, "-m", "fastxent", "bench", "--shapes", "32x10", "--min-time", "0.001",
         "--no-peers", "--threads", "all", "--plot", str(png)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {png}" in run.stdout


def test_bench_plots_the_sweep_and_the_workload_beside_it(tmp_path, python_subprocess):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    run = subprocess.run(
        [sys.executable, "-m", "fastxent", "bench", "--parts", "workload,sweep", "--shapes",
         "32x10", "--classes", "4,40", "--dtypes", "float32", "--sweep-logits", "1000",
         "--min-time", "0.001", "--no-peers", "--threads", "1", "--plot", str(png)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    workload_png = tmp_path / "bench-workload.png"
    for name in (png, workload_png):
        assert name.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {name}" in run.stdout


def test_quick_is_a_quarter_of_the_workloads_rows_and_leaves_out_torch_compile():
    _, args = _bench.parse_args(["--quick"])
    full = _bench.parse_shapes(_bench.DEFAULT_SHAPES)
    assert [(shape[0] // 4, shape[1]) for shape, _ in full] == [s for s, _ in args.cases]
    assert args.min_time == _bench.QUICK_MIN_TIME and "torch.compile" not in args.peers
    assert _bench.parse_args(["--quick", "--min-time", "1"])[1].min_time == 1


def test_bench_refuses_unknown_peers():
    with pytest.raises(SystemExit):
        _bench.parse_args(["--peers", "torch,tensorflow"])


def test_progress_estimates_the_time_left_from_the_mean_so_far():
    now = [0.0]
    out = io.StringIO()
    progress = _bench_report.Progress(4, out, clock=lambda: now[0])
    assert progress.time_left() is None
    row = {"shape": [8, 3], "dtype": "float32", "labels": "sparse", "grad": False,
           "threads": "1", "path": "plain", "bytes": 96, "fastxent_s": 1e-6,
           "read_inputs_s": 1e-7, "numpy_s": 4e-6, "torch_s": 2e-6, "matches_reference": True}
    now[0] = 10.0
    progress.update(row, ["torch"])
    assert progress.time_left() == 30.0
    line = out.getvalue()
    assert line.startswith("[1/4] 8x3 float32 sparse loss (1 thread, plain): ")
    assert "4.0x faster than NumPy" in line and "2.0x than torch" in line
    assert "[10s spent, ~30s left]" in line


def test_the_json_is_rewritten_as_results_arrive(tmp_path):
    target = tmp_path / "figures.json"
    writer = _bench_report.JsonWriter(str(target), {"date": "today"})
    writer.write([{"n": 1}])
    assert json.loads(target.read_text()) == {"complete": False, "date": "today", "rows": [{"n": 1}]}
    writer.write([{"n": 1}, {"n": 2}], complete=True)
    assert json.loads(target.read_text())["complete"] is True
    assert not (tmp_path / "figures.json.partial").exists()


def test_thread_scaling_pairs_each_all_thread_row_with_its_one_thread_row():
    base = {"shape": [8, 3], "dtype": "float32", "labels": "sparse", "grad": False,
            "path": "plain"}
    one, many = {**base, "threads": "1", "fastxent_s": 3.0}, {**base, "threads": "all",
                                                              "fastxent_s": 2.0}
    other = {**base, "grad": True, "threads": "all", "fastxent_s": 1.0}
    assert _bench_report.thread_speedups([one, many, other]) == {id(many): 1.5}
