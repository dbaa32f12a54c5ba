"""Build of the compiled kernels; the metadata lives in pyproject.toml.

``fastxent/_backends/_src/fx_kernels.c`` is compiled once per entry of
``fastxent/_backends/_src/fx_isa_list.h``
that builds on this machine (on x86-64: AVX-512, AVX2+FMA, SSE2 and plain C; on aarch64:
NEON and plain C), into separate objects (compiled side by side) linked into the one extension;
``fx_dispatch.c`` picks among them at import. OpenMP is used when the compiler accepts it;
otherwise the kernels build and run serially. FASTXENT_NO_OPENMP=1 forces the serial
build.
"""

import concurrent.futures
import importlib.util
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

SRC = "fastxent/_backends/_src"
KERNEL_SOURCE = f"{SRC}/fx_kernels.c"
HEADERS = [os.path.join(SRC, name) for name in sorted(os.listdir(SRC)) if name.endswith(".h")]
# No -ffast-math: the kernels rely on IEEE NaN and infinity semantics.
OPTIMIZE = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
# On arm64 gcc fuses a multiply and an add on its own everywhere (every arm64 target has FMA):
# there, arithmetic as written. On x86 only the AVX2 and AVX-512 kernels may fuse, which their
# speed wants (a batch's gradient, 8% on AVX2); the row math is exact everywhere by itself
# (FX_ROW_MUL in fx_row_math.h).
if platform.machine().lower() in ("aarch64", "arm64"):
    OPTIMIZE.append("-ffp-contract=off")


def _isa_list():
    """The instruction sets of fx_isa_list.h, read by fastxent/_backends/isa.py (loaded by path:
    the package itself cannot be imported before it is built)."""
    spec = importlib.util.spec_from_file_location("_fastxent_isa", "fastxent/_backends/isa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.isa_list()


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
        machine = platform.machine()
        targets = []
        for isa in _isa_list():
            if not isa.builds_on(machine):
                continue
            flags = isa.flags
            if sys.platform == "win32" and flags:
                continue  # MSVC takes other flags; the entries without any still build
            if flags and not _compiles(self.compiler, flags):
                print(f"fastxent: the compiler cannot target {isa.name}; skipping it",
                      file=sys.stderr)
                continue
            targets.append(isa)
        if not targets:
            raise RuntimeError(f"fastxent: no instruction set of fx_isa_list.h builds on {machine}")

        def compile_for(isa):
            return self.compiler.compile(
                [KERNEL_SOURCE], output_dir=os.path.join(self.build_temp, isa.name),
                macros=[("FX_ISA", isa.name)], include_dirs=ext.include_dirs,
                extra_postargs=OPTIMIZE + isa.flags, depends=HEADERS)

        # One compiler process per instruction set, side by side, while the extension's own
        # sources compile; the link waits for them.
        workers = min(len(targets), os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            pending = [pool.submit(compile_for, isa) for isa in targets]
            link = self.compiler.link_shared_object

            def link_with_kernels(objects, *args, **kwargs):
                kernels = [obj for future in pending for obj in future.result()]
                return link(objects + kernels, *args, **kwargs)

            self.compiler.link_shared_object = link_with_kernels
            ext.define_macros.append(("FX_BUILT", " ".join(f"X({isa.name})" for isa in targets)))
            try:
                super().build_extension(ext)
            finally:
                del self.compiler.link_shared_object


class BuildPy(build_py):
    """Ship the repository's CUDA sources (``cuda/*.cu``) in the package, beside the CUDA
    backend (``fastxent/_backends/cuda.py`` reads them there)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return   # an editable install reads them from cuda/ where they are
        target = Path(self.build_lib) / "fastxent" / "_backends"
        self.mkpath(str(target))
        for source in sorted(Path("cuda").glob("*.cu")):
            self.copy_file(str(source), str(target / source.name))


openmp = _openmp_flags()
kernels = Extension(
    "fastxent._backends._kernels",
    sources=["fastxent/_backends/_kernels.pyx", f"{SRC}/fx_dispatch.c"],
    include_dirs=[np.get_include(), SRC],
    depends=HEADERS + [KERNEL_SOURCE] + sorted(str(p) for p in Path("fastxent/_backends").glob("*.pxi")),
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    extra_compile_args=OPTIMIZE + openmp,
    extra_link_args=openmp,
)

setup(ext_modules=cythonize([kernels], language_level=3), cmdclass={"build_ext": BuildKernels, "build_py": BuildPy})
