#!/usr/bin/env bash
# Build fastxent's extension with AddressSanitizer and UndefinedBehaviorSanitizer in a
# scratch copy of the tree and run the test suite against it.
#   tools/sanitize.sh [pytest arguments]      (default: the whole suite, -x)
# Needs gcc with libasan/libubsan. Python itself is not instrumented, so libasan is
# preloaded; leak detection is off (CPython keeps memory alive at exit by design).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work")
cd "$work"
# -g1 (line tables) is enough for the reports' stack traces; full -g triples the build time.
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g1 -O1"
CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" FASTXENT_NO_OPENMP=${FASTXENT_NO_OPENMP:-} \
    python setup.py -q build_ext --inplace >build.log 2>&1 || { tail -30 build.log; exit 1; }
so=$(ls fastxent/_backends/_kernels*.so)
# Not `ldd | grep -q`: under pipefail, grep -q exits at its first match and ldd may then die
# of SIGPIPE, failing the pipeline (about one run in eight).
libs=$(ldd "$so")
grep -q libasan <<<"$libs" || { echo "$so is not instrumented" >&2; exit 1; }
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1
export FASTXENT_SANITIZED=1  # the leak test then checks tracemalloc only (ASan's quarantine grows RSS)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
python -c "import fastxent, sys; assert fastxent.__file__.startswith('$work'), fastxent.__file__"
# the tests that build, compile, type-check or benchmark in subprocesses (the extension
# under test is not in them), the comparison with optax (mostly JAX's compilation) and the
# Dask option matrix and linear fits on a cluster of processes (Python and scheduling: their
# kernels' calls are the core and linear tests') are left to the normal run
python -m pytest -q -p no:cacheprovider -x \
    --ignore=tests/package/test_build.py --ignore=tests/package/test_bench.py \
    --ignore=tests/package/test_asv.py --ignore=tests/backends/test_cuda_compile.py \
    --ignore=tests/backends/test_sanitize.py --ignore=tests/package/test_typing.py \
    --ignore=tests/peers/test_optax.py --ignore=tests/dask/test_dask_options.py \
    --ignore=tests/dask/test_linear_dask.py --ignore=tests/package/test_one_trip.py \
    --deselect=tests/backends/test_isa.py::test_kernel_source_compiles_cleanly \
    "${@:-tests}"
