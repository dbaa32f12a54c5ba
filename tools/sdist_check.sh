#!/usr/bin/env bash
# The release path, as a user gets it from an index: build the sdist, build a wheel from
# that sdist (not from the tree), install the wheel in a fresh virtual environment, and run
# a quick part of the sdist's own tests there, against the installed wheel. The sdist must
# carry everything its tests need (conftest.py, reference.py, the typing files, docs/).
# It builds from a scratch copy of the tracked tree, in virtual environments of its own, so
# it can run beside other work on the same checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/tree"
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work/tree")
cd "$work/tree"
python3 -m venv "$work/builder"
"$work/builder/bin/python" -m pip install -q build
"$work/builder/bin/python" -m build --sdist --outdir "$work/dist" .
sdist="$(ls "$work"/dist/fastxent-*.tar.gz)"
"$work/builder/bin/python" -m pip wheel -q --no-deps --wheel-dir "$work/dist" "$sdist"
wheel="$(ls "$work"/dist/fastxent-*.whl)"
# The wheel carries the sources the backends read at run time: the CUDA kernels (cuda/ in
# the repository) beside the CUDA backend, and the row math they include.
"$work/builder/bin/python" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
for needed in ("fastxent/_backends/fastxent_kernels.cu", "fastxent/_backends/_src/fx_row_math.h"):
    assert needed in names, f"{needed} is missing from the wheel"
PY

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install -q "$wheel[test]"
tar -xzf "$sdist" -C "$work"
cd "$work"/fastxent-*/
rm -rf fastxent          # the tests must import the installed wheel, not the sdist's sources
python -m pytest -q -p no:cacheprovider tests/core/test_dense.py tests/core/test_losses.py \
    tests/core/test_dispatch.py tests/core/test_errors.py tests/package/test_cli.py \
    tests/package/test_typing.py tests/package/test_docs.py tests/package/test_bench.py || { status=$?; cd /; exit $status; }
echo "sdist check: $(basename "$sdist") -> $(basename "$wheel"), installed and tested"
