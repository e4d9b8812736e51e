"""The TypeScript SDK (sdk/ts) covers the HTTP API and passes its own tests.

Its route table (``OPERATIONS`` in sdk/ts/src/http.ts) is checked against the
OpenAPI document here, without Node, like the Python SDK's
(tests/client/test_http_coverage.py): a route added without TypeScript SDK
support fails. Then ``npm ci`` installs the locked packages, ``npm run build``
checks that the package and its browser bundle build, and ``npm test`` runs
the golden vectors and the end-to-end tests, which start ``sandcat serve``
with this interpreter (``SANDCAT_PYTHON``); skipped only where Node is not
installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandcat.api.openapi import openapi_document, sdk_operation_ids

SDK = Path(__file__).resolve().parents[2] / "sdk" / "ts"
NPM = shutil.which("npm")
_ROW = re.compile(r'^  (\w+): \["(GET|POST|PUT|PATCH|DELETE)", "([^"]+)", (?:true|false)\],$', re.M)
_METHOD = re.compile(r"^  (?:async )?(\w+)\(", re.M)

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or NPM is None, reason="node and npm are not installed"
)


def test_every_operation_is_in_the_typescript_sdk() -> None:
    source = (SDK / "src" / "http.ts").read_text(encoding="utf-8")
    table = {op: (method, path) for op, method, path in _ROW.findall(source)}
    documented = sdk_operation_ids(openapi_document())

    missing = sorted(f"{op} ({m} {p})" for op, (m, p) in documented.items() if op not in table)
    assert not missing, f"routes without a method in sdk/ts/src/http.ts OPERATIONS: {missing}"
    assert sorted(set(table) - set(documented)) == [], "OPERATIONS names undocumented operations"
    assert {op: table[op] for op in documented} == documented
    methods = set(_METHOD.findall(source.split("export class HttpClient", 1)[1]))
    assert sorted(set(table) - methods) == [], "OPERATIONS entries without an HttpClient method"


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


@needs_node
def test_typescript_sdk_builds_and_passes_its_tests(tmp_path: Path) -> None:
    _npm("ci", "--no-audit", "--no-fund", timeout_s=300)
    built = _npm("run", "build", timeout_s=300)
    assert re.search(r"sandcat\.browser\.js: \d+ bytes, \d+ gzipped", built), built

    # The HTTP types are generated from the OpenAPI document: they must be current.
    generated = tmp_path / "openapi.ts"
    _npm("run", "openapi", "--", str(generated), timeout_s=120)
    committed = (SDK / "src" / "openapi.ts").read_text(encoding="utf-8")
    assert generated.read_text(encoding="utf-8") == committed, (
        "sdk/ts/src/openapi.ts is out of date: run `npm run openapi` in sdk/ts"
    )

    output = _npm("test", timeout_s=600)

    counts = dict(re.findall(r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", output, re.M))
    assert counts.get("fail") == "0", output[-20000:]
    assert counts.get("cancelled") == "0", output[-20000:]
    assert int(counts.get("pass", "0")) >= 150, counts
