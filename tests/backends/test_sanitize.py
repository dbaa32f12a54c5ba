"""The suite passes under AddressSanitizer and UndefinedBehaviorSanitizer
(``tools/sanitize.sh``: a scratch build with both, about 4 minutes; the tests it leaves to
the normal run are listed there)."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "sanitize.sh"


def _runtime(name):
    if shutil.which("gcc") is None:
        return None
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                          text=True).stdout.strip()
    return path if pathlib.Path(path).is_absolute() and pathlib.Path(path).exists() else None


@pytest.mark.skipif(not SCRIPT.exists() or shutil.which("git") is None
                    or not (ROOT / ".git").exists(), reason="needs the git checkout")
@pytest.mark.skipif(_runtime("libasan.so") is None or _runtime("libubsan.so") is None,
                    reason="needs gcc's libasan and libubsan")
def test_suite_under_asan_and_ubsan():
    run = subprocess.run([str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
