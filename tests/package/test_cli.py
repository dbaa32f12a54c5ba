"""``python -m fastxent``: the self-check prints the facts and agrees with the reference."""

import subprocess
import sys


def test_self_check_passes(tmp_path):
    # From another directory, so that the installed package is the one imported.
    run = subprocess.run([sys.executable, "-m", "fastxent"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fastxent 0.1.0" in run.stdout
    assert "CPU kernels: path" in run.stdout
    assert ": OK" in run.stdout


def test_unknown_command_is_refused(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fastxent", "frobnicate"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 2
    assert "usage" in run.stderr


def test_help_lists_the_commands(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fastxent", "--help"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for command in ("bench", "check", "info"):
        assert command in run.stdout


def test_info_lists_the_optional_packages(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fastxent", "info"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "optional packages" in run.stdout
    for module in ("cupy", "dask", "sklearn", "scipy", "torch", "jax"):
        assert f"  {module}" in run.stdout
