#!/usr/bin/env bash
# The kernel tests on the NEON path, in an emulated arm64 Python (tools/arm64-emulated.sh:
# Debian's arm64 Python 3.11 under qemu-user, gcc's aarch64 cross compiler), in a scratch
# copy of the tracked tree. Correctness only: emulated timings say nothing about ARM speed.
#   tools/arm64_check.sh [pytest arguments]      (default: the kernel and API test files)
# Where the tools cannot be installed (no root, no apt-get, no Debian mirror, not x86-64),
# it says so and exits 0; a build or test failure exits non-zero.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
emulated="$root/tools/arm64-emulated.sh"

if ! "$emulated" python -c pass >/dev/null 2>&1; then
    echo "arm64 check: installing the emulated arm64 Python (tools/arm64-emulated.sh setup)"
    if ! log=$("$emulated" setup 2>&1) || ! "$emulated" python -c pass >/dev/null 2>&1; then
        echo "arm64 check SKIPPED: the emulated arm64 Python could not be installed here:"
        echo "$log" | tail -5
        exit 0
    fi
fi

set -e
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work")
cd "$work"
"$emulated" python setup.py -q build_ext --inplace >build.log 2>&1 || { tail -30 build.log; exit 1; }
"$emulated" python -m fastxent info
tests=(tests/backends/test_isa.py tests/core/test_accuracy.py tests/backends/test_simd.py
       tests/core/test_sparse.py tests/core/test_dense.py tests/backends/test_threads.py
       tests/core/test_half.py tests/core/test_gradients.py tests/core/test_outputs.py
       tests/core/test_losses.py tests/core/test_errors.py tests/core/test_properties.py
       tests/core/test_extras.py tests/core/test_memory.py tests/core/test_hardening.py
       tests/core/test_conformance.py tests/core/test_fast_path.py tests/package/test_layers.py
       tests/core/test_bfloat16.py tests/peers/test_optax.py tests/linear/test_linear.py)
# the 2**32-element, 100,000-call and Ctrl-C hardening tests take too long under emulation;
# the fuzz tests (argument checks, the same on every machine) and the source's clean compile
# for every target (the cross gcc included) run natively
"$emulated" python -m pytest -q -p no:cacheprovider \
    -k "not huge_zero_stride and not no_leak and not ctrl_c and not fuzz and not compiles_cleanly" \
    "${@:-${tests[@]}}"
