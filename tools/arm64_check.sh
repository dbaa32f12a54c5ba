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
tests=(tests/test_isa.py tests/test_accuracy.py tests/test_simd.py tests/test_sparse.py
       tests/test_dense.py tests/test_threads.py tests/test_half.py tests/test_gradients.py
       tests/test_outputs.py tests/test_losses.py tests/test_errors.py tests/test_properties.py
       tests/test_extras.py tests/test_memory.py tests/test_hardening.py tests/test_conformance.py
       tests/test_fast_path.py tests/test_layers.py tests/test_bfloat16.py tests/test_optax.py
       tests/test_linear.py)
# the 2**32-element, 100,000-call and Ctrl-C hardening tests take too long under emulation;
# the fuzz tests (argument checks, the same on every machine) and the source's clean compile
# for every target (the cross gcc included) run natively
"$emulated" python -m pytest -q -p no:cacheprovider \
    -k "not huge_zero_stride and not no_leak and not ctrl_c and not fuzz and not compiles_cleanly" \
    "${@:-${tests[@]}}"
