"""Fuzz the HTTP API with schemathesis against a live ``sandcat serve``.

Starts a server on free loopback ports with a temporary data directory, sets
the scene (a logged-in user with a friend, a pending request and a block), and
runs schemathesis against ``/api/v1/openapi.json``: any 5xx, or any response
that its schema does not describe, fails the run. Used by ``nox -s fuzz-api``;
extra arguments go to schemathesis (e.g. ``--max-examples 200``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

#: Operations that would end the fuzzer's own session (every later call: 401).
_SPARED = ("logout", "logoutEverywhere", "disableMe", "revokeSession", "changePassword")
_PASSWORD = "fuzzing horse 7"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(base: str, path: str, body: object | None = None, token: str = "") -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read()
    return json.loads(text) if text else {}


def _login(base: str, name: str) -> tuple[str, str]:
    _call(base, "/api/v1/auth/register", {"username": name, "password": _PASSWORD})
    tokens = _call(base, "/api/v1/auth/login", {"login": name, "password": _PASSWORD})
    user = tokens["user"]
    assert isinstance(user, dict)
    return str(user["id"]), str(tokens["access_token"])


def main(argv: list[str]) -> int:
    http_port, ws_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryDirectory() as data:
        config = Path(data) / "sandcat.toml"
        # Generous limits: the fuzzer logs in and asks for codes far more than people do.
        config.write_text(
            "[auth]\nlogin_failures_per_ip = 1000000\nlogin_failures = 100000\n"
            "codes_per_ip = 1000000\ncodes_per_email = 100000\nregistrations_per_ip = 1000000\n"
            "profile_changes_per_user = 1000000\ncontact_codes_per_user = 1000000\n"
            "[chat]\nfriend_requests_per_user = 1000000\nfriend_requests_per_ip = 1000000\n"
            "friend_requests_per_pair = 1000000\n",
            encoding="utf-8",
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandcat",
                "serve",
                "--config",
                str(config),
                "--data-dir",
                data,
                "--http-port",
                str(http_port),
                "--ws-port",
                str(ws_port),
            ],
            env={**os.environ, "SANDCAT_TOKEN_SECRET": "x" * 40},
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _call(base, "/healthz")
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            me, token = _login(base, "fuzzer")
            friend, friend_token = _login(base, "friendly")
            stranger, _ = _login(base, "stranger")
            request = _call(base, "/api/v1/friends/requests", {"to": friend}, token)["request"]
            assert isinstance(request, dict)
            _call(base, f"/api/v1/friends/requests/{request['id']}/accept", {}, friend_token)
            _call(base, "/api/v1/friends/requests", {"to": stranger}, token)
            print(f"fuzzing as {me}; friend {friend}; stranger {stranger}", flush=True)
            command = [
                str(Path(sys.executable).with_name("schemathesis")), "run",
                f"{base}/api/v1/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance",
                "--header", f"Authorization: Bearer {token}",
                "--max-examples", "25",
                "--request-timeout", "10",
                "--generation-allow-x00", "false",
                *[arg for op in _SPARED for arg in ("--exclude-operation-id", op)],
                *argv,
            ]  # fmt: skip
            # In the scratch directory: schemathesis keeps caches where it runs.
            return subprocess.run(command, check=False, cwd=data).returncode
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
