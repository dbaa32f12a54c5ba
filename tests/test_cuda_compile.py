"""The CUDA sources compile with nvcc for sm_80 and sm_90, without a warning.

CI has nvcc but no GPU: this checks every kernel the runtime instantiates
(``fastxent._cuda.NAME_EXPRESSIONS``) with the runtime's options.
"""

import shutil
import subprocess

import pytest

from fastxent import _cuda

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")


def _instantiations():
    names = ", ".join(f"(const void *){name}" for name in _cuda.NAME_EXPRESSIONS)
    return (f'#include "{_cuda.SOURCE}"\n'
            f"const void *const *fx_every_kernel(void)\n"
            f"{{\n    static const void *const kernels[] = {{{names}}};\n    return kernels;\n}}\n")


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_kernel_compiles_cleanly(tmp_path, arch):
    source = tmp_path / "instantiate.cu"
    source.write_text(_instantiations())
    run = subprocess.run(
        ["nvcc", f"-arch={arch}", *_cuda.COMPILE_OPTIONS, "-Werror", "all-warnings",
         "-Xptxas", "-warn-spills", "-c", str(source), "-o", str(tmp_path / "k.o")],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
