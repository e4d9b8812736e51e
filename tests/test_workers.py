"""``sandcat serve --workers N``: one address, N processes sharing PostgreSQL.

With two workers, each one serves on its own (the other is frozen with
SIGSTOP meanwhile) and a user registered through one logs in through the
other; SIGTERM to the supervisor stops every worker and it exits 0. SQLite
is refused with a message; a worker that dies stops the others (exit 1).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from sandcat.app import run_server
from sandcat.cli import _worker_argv
from sandcat.errors import ConfigError
from sandcat.supervisor import bind, check
from tests.cluster.conftest import TOKEN_SECRET
from tests.gateway.raw import Raw
from tests.passwords import FAST_PASSWORDS
from tests.postgres import free_port
from tests.scene import Api, make_config
from tests.test_cli import child_env, sandcat

_LINE = re.compile(r"supervising 2 workers \(pids (\d+) (\d+)\) on ws://[^ ]+ and (http://\S+)")


@contextmanager
def supervisor(
    tmp_path: Path, postgres_url: str
) -> Iterator[tuple[subprocess.Popen[str], str, list[int]]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandcat",
            "serve",
            "--workers",
            "2",
            "--data-dir",
            str(tmp_path / "data"),
            "--ws-port",
            "0",
            "--http-port",
            str(free_port()),
            "--log-level",
            "WARNING",
        ],
        env=child_env(SANDCAT_DATABASE_URL=postgres_url, SANDCAT_TOKEN_SECRET=TOKEN_SECRET),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = _LINE.search(process.stdout.readline())
        assert match is not None
        yield process, match.group(3), [int(match.group(1)), int(match.group(2))]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


#: Two workers opening PostgreSQL (one migrates, the other waits for its lock):
#: a few seconds here, more on a loaded machine.
_START_S = 30.0


def _healthy(process: subprocess.Popen[str], http_url: str) -> None:
    # A new connection per request: the kernel hands it to a worker that accepts.
    deadline = time.monotonic() + _START_S
    with httpx.Client(base_url=http_url, timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                assert process.stderr is not None
                error = process.stderr.read()
                raise AssertionError(f"the server exited {process.returncode}:\n{error}")
            time.sleep(0.05)
    raise AssertionError(f"no worker answered within {_START_S} s")


def test_two_workers_each_serve_and_sigterm_stops_all_with_exit_0(
    tmp_path: Path, postgres_url: str
) -> None:
    with supervisor(tmp_path, postgres_url) as (process, http_url, (first, second)):
        _healthy(process, http_url)
        body = {"username": "wanda", "password": "correct horse 1"}
        for frozen, serving in ((first, second), (second, first)):
            os.kill(frozen, signal.SIGSTOP)
            try:
                with httpx.Client(base_url=http_url, timeout=5) as http:
                    if serving == second:
                        assert http.post("/api/v1/auth/register", json=body).status_code == 201
                    else:  # the other process sees what the first one stored
                        login = {"login": "wanda", "password": body["password"], "device": "d"}
                        reply = http.post("/api/v1/auth/login", json=login | {"platform": "t"})
                        assert reply.status_code == 200, reply.text
            finally:
                os.kill(frozen, signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        for pid in (first, second):
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_worker_that_dies_stops_the_others_and_exit_is_1(
    tmp_path: Path, postgres_url: str
) -> None:
    with supervisor(tmp_path, postgres_url) as (process, http_url, (first, second)):
        _healthy(process, http_url)
        os.kill(first, signal.SIGKILL)
        assert process.wait(timeout=30) == 1
        assert not Path(f"/proc/{second}").exists()


def test_workers_with_sqlite_are_refused_with_a_message(tmp_path: Path) -> None:
    result = sandcat("serve", "--workers", "2", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers needs PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("count", ["0", "-1", "x", "1025"])
def test_a_bad_worker_count_is_a_usage_error(tmp_path: Path, count: str) -> None:
    result = sandcat("serve", "--workers", count, "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_workers_run_the_same_command_line_without_workers() -> None:
    argv = ["serve", "--workers", "3", "--ws-port", "0", "--workers=2", "--host", "::1"]
    assert _worker_argv(argv) == ["serve", "--ws-port", "0", "--host", "::1"]


async def test_a_worker_serves_on_the_sockets_it_inherits(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """What each worker does with ``--listen-fds``, in process: no port of its own."""
    ws, http = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    fds = (os.dup(ws.fileno()), os.dup(http.fileno()))  # the worker owns (and closes) these
    try:
        config = make_config(tmp_path, **{"server.ws_port": 1, "server.http_port": 1})
        server = await nursery.start(
            lambda task_status: run_server(
                config, listen_fds=fds, passwords=FAST_PASSWORDS, task_status=task_status
            )
        )
        assert (server.ws_port, server.http_port) == (ws.getsockname()[1], http.getsockname()[1])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            account = await Api(client).account()
        async with open_websocket_url(
            f"ws://127.0.0.1:{server.ws_port}/ws", subprotocols=["sandcat.v1"]
        ) as socket:
            raw = Raw(socket)
            await raw.hello(account.token)
        server.shutdown()
    finally:
        ws.close()
        http.close()


def test_workers_without_kafka_or_redis_start_with_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, **{"backends.database_url": "postgresql://db/sandcat"})
    check(config, 1)
    assert caplog.text == ""
    check(config, 2)
    assert "without Kafka" in caplog.text
    assert "without Redis" in caplog.text
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        check(make_config(tmp_path), 2)


@pytest.mark.parametrize(("role", "warned"), [("gateway", True), ("api", False), ("worker", False)])
def test_only_workers_holding_connections_warn_without_kafka_or_redis(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, role: str, warned: bool
) -> None:
    """Pushes reach only one process's clients without Kafka and Redis: an api or
    worker process holds none (docs/roles.md)."""
    settings = {"backends.database_url": "postgresql://db/sandcat", "server.role": role}
    check(make_config(tmp_path, **settings), 2)
    assert ("without Kafka" in caplog.text) is warned
    assert ("without Redis" in caplog.text) is warned
