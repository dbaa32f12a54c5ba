"""Build of the compiled kernels; the metadata lives in pyproject.toml.

``fastxent/_src/fx_kernels.c`` is compiled once per instruction set (AVX-512,
AVX2+FMA, and the SSE2/plain-C baseline) into separate objects linked into
the one extension; ``fx_dispatch.c`` picks among them at import. Off x86-64
only the baseline is built. OpenMP is used when the compiler accepts it;
otherwise the kernels build and run serially. FASTXENT_NO_OPENMP=1 forces the
serial build.
"""

import os
import platform
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SRC = "fastxent/_src"
KERNEL_SOURCE = f"{SRC}/fx_kernels.c"
HEADERS = [f"{SRC}/{name}" for name in (
    "fx_half.h", "fx_kernels.h", "fx_kernels_impl.h", "fx_math.h", "fx_omp.h", "fx_simd.h")]
# No -ffast-math: the kernels rely on IEEE NaN and infinity semantics.
OPTIMIZE = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
X86_BUILDS = {
    "avx512": ["-DFX_AVX512", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mfma"],
    "avx2": ["-DFX_AVX2", "-mavx2", "-mfma"],
}


def _compiles(compiler, flags, source="int main(void) { return 0; }\n", link=False):
    from setuptools._distutils.errors import CompileError, LinkError

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=flags)
        except (CompileError, LinkError):
            return False
    return True


def _new_compiler():
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    return compiler


def _openmp_flags():
    """Compile and link flags for OpenMP, or [] if the compiler lacks it."""
    if os.environ.get("FASTXENT_NO_OPENMP") or sys.platform == "win32":
        return []
    probe = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"
    if _compiles(_new_compiler(), ["-fopenmp"], probe, link=True):
        return ["-fopenmp"]
    print("fastxent: no OpenMP in this compiler; building serial kernels", file=sys.stderr)
    return []


class BuildKernels(build_ext):
    """Compile the kernel source once per instruction set before linking the extension."""

    def build_extension(self, ext):
        builds = {"baseline": []}
        if platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32":
            for name, flags in X86_BUILDS.items():
                if _compiles(self.compiler, flags):
                    builds[name] = flags
                else:
                    print(f"fastxent: the compiler cannot target {name}; skipping it",
                          file=sys.stderr)
        objects = []
        for name, flags in builds.items():
            objects += self.compiler.compile(
                [KERNEL_SOURCE], output_dir=os.path.join(self.build_temp, name),
                include_dirs=ext.include_dirs, extra_postargs=OPTIMIZE + flags,
                depends=HEADERS)
            if name != "baseline":
                ext.define_macros.append((f"FX_HAVE_{name.upper()}", "1"))
        ext.extra_objects = objects
        super().build_extension(ext)


openmp = _openmp_flags()
kernels = Extension(
    "fastxent._kernels",
    sources=["fastxent/_kernels.pyx", f"{SRC}/fx_dispatch.c"],
    include_dirs=[np.get_include(), SRC],
    depends=HEADERS + [KERNEL_SOURCE],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    extra_compile_args=OPTIMIZE + openmp,
    extra_link_args=openmp,
)

setup(ext_modules=cythonize([kernels], language_level=3), cmdclass={"build_ext": BuildKernels})
