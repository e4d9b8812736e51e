"""The shipped web client (src/sandcat/web/static/) is what a fresh build of web/ makes.

Needs Node and web/node_modules (``npm ci`` in web/, as ``nox -s browser`` does);
skipped without them, so ``nox -s check`` needs no Node.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.web.conftest import ROOT

NODE = shutil.which("node")


@pytest.mark.skipif(
    NODE is None or not (ROOT / "web" / "node_modules" / "esbuild").is_dir(),
    reason="needs node and `npm ci` in web/ (nox -s browser)",
)
def test_shipped_assets_match_a_fresh_build() -> None:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "build.mjs", "--check"],
        cwd=ROOT / "web",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "match a fresh build" in done.stdout
