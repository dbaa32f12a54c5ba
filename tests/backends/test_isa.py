"""The one list of instruction sets (fastxent/_backends/_src/fx_isa_list.h) and the choice among them.

setup.py builds every entry of the list that builds on this machine, the dispatcher
offers the ones this CPU runs in the list's order, and FASTXENT_CPU_PATH picks among
those; the names come from the list everywhere.
"""

import os
import pathlib
import platform
import shutil
import subprocess
import sys

import pytest

from fastxent._backends import _kernels
from fastxent._backends.isa import isa_list

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "fastxent" / "_backends" / "_src"
NAMES = [isa.name for isa in isa_list()]


def test_the_list_names_a_header_for_every_entry():
    assert NAMES[-1] == "plain" and len(set(NAMES)) == len(NAMES)
    for name in NAMES:
        assert (SOURCE / f"fx_simd_{name}.h").exists()


def test_every_entry_for_this_machine_is_built_in_list_order():
    machine = platform.machine()
    assert _kernels.built() == [isa.name for isa in isa_list() if isa.builds_on(machine)]


def test_paths_are_the_runnable_builds_best_first():
    paths = _kernels.paths()
    assert paths == [name for name in _kernels.built() if name in paths]
    assert paths[-1] == "plain"
    assert _kernels.path() == paths[0]
    with pytest.raises(ValueError, match="not supported"):
        _kernels.set_path("avx1024")


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64")
def test_x86_64_builds_its_vector_paths():
    assert {"avx512", "avx2", "sse2", "plain"} <= set(_kernels.built())


@pytest.mark.skipif(platform.machine().lower() not in ("aarch64", "arm64"), reason="arm64")
def test_arm64_builds_and_runs_neon():
    assert _kernels.paths()[0] == "neon"


@pytest.mark.parametrize("requested", _kernels.paths() + ["baseline", "bogus"])
def test_environment_chooses_the_path(tmp_path, python_subprocess, requested):
    run = subprocess.run(
        [sys.executable, "-c", "import fastxent._backends._kernels as k; print(k.path())"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "FASTXENT_CPU_PATH": requested})
    assert run.returncode == 0, run.stderr
    paths = _kernels.paths()
    if requested == "bogus":
        assert run.stdout.strip() == paths[0] and "FASTXENT_CPU_PATH" in run.stderr
    else:
        assert run.stdout.strip() == (paths[-1] if requested == "baseline" else requested)


COMPILERS = ("gcc", "aarch64-linux-gnu-gcc")


def _target(compiler):
    """The machine a compiler builds for (its -dumpmachine's first field), or None."""
    if shutil.which(compiler) is None:
        return None
    run = subprocess.run([compiler, "-dumpmachine"], capture_output=True, text=True)
    return run.stdout.split("-")[0] if run.returncode == 0 else None


def _compilers():
    """(entry, compiler) for every entry of the list, with the first compiler installed
    here that targets one of its machines (Debian's aarch64 cross gcc for NEON on x86)."""
    targets = {compiler: _target(compiler) for compiler in COMPILERS}
    for isa in isa_list():
        usable = [c for c, target in targets.items() if target and isa.builds_on(target)]
        yield pytest.param(isa, usable[0] if usable else None, id=isa.name)


@pytest.mark.skipif(not (SOURCE / "fx_kernels.c").exists(), reason="needs the source tree")
@pytest.mark.parametrize("isa, compiler", list(_compilers()))
def test_kernel_source_compiles_cleanly(tmp_path, isa, compiler):
    if compiler is None:
        pytest.skip(f"no compiler here targets {isa.name} ({', '.join(isa.machines)})")
    run = subprocess.run([compiler, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c",
                          str(SOURCE / "fx_kernels.c"), "-o", str(tmp_path / "k.o"),
                          f"-DFX_ISA={isa.name}", *isa.flags],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
