"""Build of the compiled kernels; the metadata lives in pyproject.toml.

OpenMP is used when the compiler accepts it; otherwise the kernels build and
run serially. FASTXENT_NO_OPENMP=1 forces the serial build.
"""

import os
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _openmp_flags():
    """Compile and link flags for OpenMP, or ([], []) if the compiler lacks it."""
    if os.environ.get("FASTXENT_NO_OPENMP") or sys.platform == "win32":
        return [], []
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CompileError, LinkError
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    flags = ["-fopenmp"]
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=flags)
        except (CompileError, LinkError):
            print("fastxent: no OpenMP in this compiler; building serial kernels", file=sys.stderr)
            return [], []
    return flags, flags


compile_omp, link_omp = _openmp_flags()

kernels = Extension(
    "fastxent._kernels",
    sources=["fastxent/_kernels.pyx"],
    include_dirs=[np.get_include(), "fastxent/_src"],
    depends=["fastxent/_src/fx_rows.h", "fastxent/_src/fx_rows_impl.h", "fastxent/_src/fx_half.h"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    # No -ffast-math: the kernels rely on IEEE NaN and infinity semantics.
    extra_compile_args=["-O3", "-fno-math-errno", *compile_omp],
    extra_link_args=link_omp,
)

setup(ext_modules=cythonize([kernels], language_level=3))
