#!/bin/bash
# (A copy of the workplace's shared/tools/arm64-emulated.sh, kept here so that CI needs
# nothing outside the repository; tools/arm64_check.sh runs it.)
# An emulated ARM64 (aarch64) Python on this x86-64 machine, for building and testing the
# kernels' ARM code paths: Debian's arm64 Python 3.11 run by qemu-user, NumPy and the test tools
# from their aarch64 wheels, and gcc's aarch64 cross compiler (Python's own build config names it).
# Correctness only: emulated timings say nothing about real ARM speed.
#
#   arm64-emulated.sh setup                       once per machine (about a minute; needs root)
#   arm64-emulated.sh python -c "import platform; print(platform.machine())"
#   arm64-emulated.sh python setup.py build_ext --inplace       (from the project's root)
#   arm64-emulated.sh python -m pytest -q tests/test_sparse.py
#
# qemu also emulates SVE; set QEMU_CPU (e.g. QEMU_CPU=max,sve=off, or cortex-a72) to pick a CPU.
set -euo pipefail
ROOT=${FX_ARM64_ROOT:-/opt/arm64-py}
PKGS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3.11 libpython3.11-dev
libc6 libexpat1 zlib1g libffi8 libssl3 libgomp1 libgcc-s1 libstdc++6 libbz2-1.0 liblzma5 libsqlite3-0
libncursesw6 libtinfo6 libreadline8 libuuid1 libcrypt1 libnsl2 libtirpc3 libdb5.3 libgdbm6"
WHEELS="numpy>=2 Cython>=3.1 setuptools pytest pluggy iniconfig packaging hypothesis attrs
sortedcontainers threadpoolctl pygments scipy"

setup() {
  export DEBIAN_FRONTEND=noninteractive
  dpkg --add-architecture arm64
  apt-get update -qq
  apt-get install -y -qq qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross > /dev/null
  mkdir -p "$ROOT/debs" "$ROOT/root" "$ROOT/wheels" "$ROOT/site"
  (cd "$ROOT/debs" && apt-get download -qq $(for p in $PKGS; do echo "$p:arm64"; done) media-types 2>&1 \
     | grep -v "unsandboxed" || true)
  for d in "$ROOT"/debs/*.deb; do dpkg -x "$d" "$ROOT/root"; done
  # shellcheck disable=SC2086
  pip download -q --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    -d "$ROOT/wheels" $WHEELS 2>&1 | grep -v "^WARNING" || true
  for w in "$ROOT"/wheels/*.whl; do python3 -m zipfile -e "$w" "$ROOT/site"; done
  run python -c "import numpy, platform; print('arm64 Python ready:', platform.machine(), 'NumPy', numpy.__version__)"
}

run() {
  [[ $1 == python ]] || { echo "usage: $0 setup | python ARGS..."; exit 2; }
  shift
  [[ -x $ROOT/root/usr/bin/python3.11 ]] || { echo "run '$0 setup' first"; exit 2; }
  # The compiler runs natively (x86-64); point it at the arm64 Python headers.
  CFLAGS="-I$ROOT/root/usr/include/python3.11 -I$ROOT/root/usr/include ${CFLAGS:-}" \
  PYTHONPATH="$ROOT/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
    exec qemu-aarch64-static -L "$ROOT/root" "$ROOT/root/usr/bin/python3.11" "$@"
}

case ${1:-} in
  setup) setup ;;
  python) run "$@" ;;
  *) echo "usage: $0 setup | python ARGS..."; exit 2 ;;
esac
