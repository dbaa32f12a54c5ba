"""The asv suite is well formed (``asv check``), as CI runs it."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

SUITE = pathlib.Path(__file__).resolve().parents[2] / "asv_benchmarks"


@pytest.mark.skipif(shutil.which("asv") is None or not SUITE.exists(),
                    reason="needs asv and the source tree")
def test_asv_check():
    run = subprocess.run(["asv", "check", "--python=same"], cwd=SUITE, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No problems found" in run.stdout


def _git_head():
    try:
        run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SUITE, capture_output=True,
                             text=True, timeout=60)
    except OSError:
        return None
    return run.stdout.strip() if run.returncode == 0 else None


@pytest.mark.skipif(shutil.which("asv") is None or not SUITE.exists() or _git_head() is None,
                    reason="needs asv and a git checkout of the source tree")
def test_the_readmes_asv_commands_store_results_and_publish_them(tmp_path):
    """README's commands, into a temporary directory (and a temporary HOME for asv's
    machine file): the results are stored under the commit and the machine, and
    ``asv publish`` writes a site with them."""
    config = json.loads((SUITE / "asv.conf.json").read_text())
    config.update(repo=str(SUITE.parent), benchmark_dir=str(SUITE / "benchmarks"),
                  results_dir=str(tmp_path / "results"), html_dir=str(tmp_path / "html"),
                  env_dir=str(tmp_path / "env"))
    (tmp_path / "asv.conf.json").write_text(json.dumps(config))
    env = {**os.environ, "HOME": str(tmp_path)}
    head = _git_head()

    def asv(*args):
        run = subprocess.run(["asv", *args, "--config", str(tmp_path / "asv.conf.json")],
                             cwd=SUITE, capture_output=True, text=True, timeout=600, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    asv("machine", "--yes", "--machine", "ci-box")
    asv("run", "--python=same", "--quick", "--set-commit-hash", head, "--machine", "ci-box",
        "--bench", "ReducedLoss", "--bench", "CrossEntropy.track_logits_gb_per_s",
        "--bench", "SmallCalls.track_times_the_plain_call")
    stored = list((tmp_path / "results" / "ci-box").glob(f"{head[:8]}-*.json"))
    assert len(stored) == 1
    results = json.loads(stored[0].read_text())
    assert results["commit_hash"] == head and results["params"]["machine"] == "ci-box"
    rate = results["results"]["cross_entropy.CrossEntropy.track_logits_gb_per_s"][0]
    assert all(value is not None and value > 0 for value in rate)  # every case measured
    ratios = results["results"]["cross_entropy.SmallCalls.track_times_the_plain_call"][0]
    assert len(ratios) > 10 and all(value is not None and value > 0 for value in ratios)
    asv("publish")
    assert (tmp_path / "html" / "index.html").is_file()
    published = json.loads((tmp_path / "html" / "index.json").read_text())
    assert "cross_entropy.CrossEntropy.track_logits_gb_per_s" in published["benchmarks"]
    assert published["benchmarks"]["cross_entropy.CrossEntropy.track_logits_gb_per_s"]["unit"] == "GB/s"
