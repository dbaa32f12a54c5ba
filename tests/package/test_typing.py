"""The package is typed: it ships ``py.typed`` and stubs that agree with the run time, mypy
passes on it, and a user's script gets real types (and its mistakes caught)."""

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("mypy")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = pathlib.Path(__import__("fastxent").__file__).resolve().parent
STUBBED = ["fastxent._backends._kernels", "fastxent.nn", "fastxent.losses", "fastxent.linear",
           "fastxent.compat.v1.nn"]


def environment():
    """mypy finds an installed package in site-packages; an editable install (a source tree
    with the kernels built in place) it finds only through MYPYPATH."""
    env = dict(os.environ)
    if "site-packages" not in PACKAGE.parts:
        env["MYPYPATH"] = str(PACKAGE.parent)
    return env


def mypy(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mypy", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=environment())


def test_the_installed_package_is_marked_typed_and_ships_its_stubs():
    for name in ["py.typed", "_backends/_kernels.pyi", "nn.pyi", "losses.pyi", "linear.pyi",
                 "compat/v1/nn.pyi"]:
        assert (PACKAGE / name).is_file(), name


def test_the_stubs_agree_with_the_run_time(tmp_path, python_subprocess):
    # from a temporary directory: the installed package, as a user's mypy sees it
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--concise", "--allowlist",
         str(ROOT / "tests" / "stubtest-allowlist.txt"), *STUBBED],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=environment())
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_passes_on_the_package(python_subprocess):
    run = mypy("-p", "fastxent", "--cache-dir", "/dev/null", cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_users_script_gets_the_types_of_its_results(tmp_path, python_subprocess):
    run = mypy(str(ROOT / "tests" / "typing" / "typed_usage.py"), "--cache-dir", "/dev/null",
               cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_misspelt_keyword_and_a_missing_argument_are_caught(tmp_path, python_subprocess):
    script = tmp_path / "mistakes.py"
    script.write_text(
        "import numpy as np\nimport fastxent\n"
        "fastxent.nn.sparse_softmax_cross_entropy_with_logits(labels=[0], logit=np.zeros((1, 2)))\n"
        "fastxent.nn.softmax_cross_entropy_with_logits(logits=np.zeros((1, 2)))\n"
        "fastxent.losses.softmax_cross_entropy([[1.0, 0.0]], [[0.0, 0.0]], reduktion='mean')\n")
    run = mypy(str(script), "--cache-dir", "/dev/null", cwd=tmp_path)
    assert run.returncode == 1
    assert 'mistakes.py:3: error: Unexpected keyword argument "logit"' in run.stdout
    assert 'did you mean "logits"?' in run.stdout
    assert "mistakes.py:4: error: No overload variant" in run.stdout
    assert 'mistakes.py:5: error: Unexpected keyword argument "reduktion"' in run.stdout
