#!/usr/bin/env bash
# The release path, as a user gets it from an index: build the sdist, build a wheel from
# that sdist (not from the tree), install the wheel in a fresh virtual environment, and run
# a quick part of the sdist's own tests there, against the installed wheel. The sdist must
# carry everything its tests need (conftest.py, reference.py, the typing files, docs/).
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip install -q build
python -m build --sdist --outdir "$work/dist" .
sdist="$(ls "$work"/dist/fastxent-*.tar.gz)"
python -m pip wheel -q --no-deps --wheel-dir "$work/dist" "$sdist"
wheel="$(ls "$work"/dist/fastxent-*.whl)"

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install -q "$wheel[test]"
tar -xzf "$sdist" -C "$work"
cd "$work"/fastxent-*/
rm -rf fastxent          # the tests must import the installed wheel, not the sdist's sources
python -m pytest -q -p no:cacheprovider tests/test_dense.py tests/test_losses.py \
    tests/test_dispatch.py tests/test_errors.py tests/test_cli.py tests/test_typing.py \
    tests/test_docs.py tests/test_bench.py || { status=$?; cd /; exit $status; }
echo "sdist check: $(basename "$sdist") -> $(basename "$wheel"), installed and tested"
