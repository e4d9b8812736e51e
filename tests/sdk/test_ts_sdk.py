"""The TypeScript SDK (sdk/ts) passes its own tests, run from this suite so CI runs them.

``npm ci`` installs the locked packages, ``npm run build`` checks that the
package and its browser bundle build, and ``npm test`` runs the golden
vectors and the end-to-end tests, which start ``sandcat serve`` with this
interpreter (``SANDCAT_PYTHON``). Skipped only where Node is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk" / "ts"
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or NPM is None, reason="node and npm are not installed"
)


def _npm(*args: str, timeout_s: float) -> str:
    assert NPM is not None
    env = {**os.environ, "SANDCAT_PYTHON": sys.executable, "NO_COLOR": "1"}
    result = subprocess.run(
        [NPM, *args],
        cwd=SDK,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{output[-20000:]}"
    return output


def test_typescript_sdk_builds_and_passes_its_tests() -> None:
    _npm("ci", "--no-audit", "--no-fund", timeout_s=300)
    built = _npm("run", "build", timeout_s=300)
    assert re.search(r"sandcat\.browser\.js: \d+ bytes, \d+ gzipped", built), built

    output = _npm("test", timeout_s=600)

    counts = dict(re.findall(r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", output, re.M))
    assert counts.get("fail") == "0", output[-20000:]
    assert counts.get("cancelled") == "0", output[-20000:]
    assert int(counts.get("pass", "0")) >= 150, counts
