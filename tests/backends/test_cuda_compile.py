"""The CUDA sources compile with nvcc for sm_80 and sm_90, without a warning.

CI has nvcc but no GPU: this checks every kernel the runtime instantiates
(``fastxent._backends.cuda.name_expressions``), in the text NVRTC gets (``fastxent._backends.cuda.source``:
the row math shared with the C kernels written in), with the runtime's options: sm_80 without
thread-block clusters, sm_90 with them. The register-resident kernels are allowed a
few bytes of spills (``MAX_SPILL_BYTES``): the register budget that makes them
fastest costs that much.
"""

import re
import shutil
import subprocess

import pytest

from fastxent._backends import cuda as _cuda

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")

MAX_SPILL_BYTES = 256


def _instantiations(clusters):
    """The source as NVRTC gets it, and a table of every kernel the runtime instantiates."""
    names = ", ".join(f"(const void *){name}" for name in _cuda.name_expressions(clusters))
    return (f"{_cuda.source()}\n"
            f"const void *const *fx_every_kernel(void)\n"
            f"{{\n    static const void *const kernels[] = {{{names}}};\n    return kernels;\n}}\n")


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_kernel_compiles_cleanly(tmp_path, arch):
    clusters = arch == "sm_90"
    source = tmp_path / "instantiate.cu"
    source.write_text(_instantiations(clusters))
    options = _cuda.COMPILE_OPTIONS + (_cuda.CLUSTER_OPTIONS if clusters else ())
    run = subprocess.run(
        ["nvcc", f"-arch={arch}", *options, "-Werror", "all-warnings", "-Xptxas", "-v",
         "-c", str(source), "-o", str(tmp_path / "k.o")],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill stores", run.stderr)]
    assert len(spills) >= len(_cuda.name_expressions(clusters)) - 1  # one report per kernel
    assert max(spills) <= MAX_SPILL_BYTES, [line for line in run.stderr.splitlines()
                                            if "spill" in line and " 0 bytes spill s" not in line]


def test_the_cuda_kernels_use_the_c_kernels_row_math():
    """One definition of the row math: the CUDA source includes the C kernels' header and
    defines none of its functions itself."""
    text = _cuda.SOURCE.read_text()
    assert '#include "fx_row_math.h"' in text
    for name in ("fx_sparse_loss", "fx_dense_loss", "fx_dense_grad_coefs",
                 "fx_sparse_target_grad", "fx_row_r"):
        assert f"{name}(" in text, name
        assert not re.search(rf"\b(double|void)\s+{name}\(", text), name
    assert "fx_combine(&" in text
