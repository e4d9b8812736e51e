"""``sandcat serve`` rides out backends that are down or slow at startup (sandcat/startup.py).

Real backends over real sockets: a Kafka broker (tansu) that comes up a few
seconds after the server started, and a Redis that never comes (the deadline
lowered in the test).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.bus.broadcast import BroadcastUnavailable
from sandcat.bus.bus import BusUnavailable
from sandcat.cli import main
from sandcat.errors import LocalStoreUnavailable, StoreUnavailable, Unavailable
from sandcat.startup import (
    FIRST_BACKOFF_S,
    MAX_BACKOFF_S,
    StartupGaveUp,
    backend_of,
    backoff_s,
    start_with_retry,
    unavailable_in,
)
from tests.kafka import Tansu
from tests.passwords import serve_environment
from tests.postgres import free_port


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SANDCAT_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SANDCAT_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}
    return serve_environment({**env, "PYTHONUNBUFFERED": "1"})


def _wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        logged = path.read_text(errors="replace")
        if text in logged:
            return logged
        assert process.poll() is None, logged
        assert time.monotonic() < deadline, logged
        time.sleep(0.1)


def test_serve_waits_for_a_kafka_broker_that_comes_up_later_then_serves(
    tmp_path: Path, postgres_url: str
) -> None:
    port = free_port()
    (tmp_path / "sandcat.toml").write_text(
        f"""
[server]
startup_timeout_s = 120

[backends]
database_url = "{postgres_url}"
kafka_bootstrap = "127.0.0.1:{port}"
kafka_topic = "startup-late"
kafka_partitions = 1
kafka_timeout_s = 1.0
"""
    )
    http_port, ws_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    broker = Tansu(port, tmp_path / "tansu.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.serve",
                "serve",
                "--config",
                str(tmp_path / "sandcat.toml"),
                "--data-dir",
                str(tmp_path / "data"),
                "--ws-port",
                str(ws_port),
                "--http-port",
                str(http_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(),
        )
    try:
        # Down: the server logs its failed attempts and keeps waiting (no /healthz yet).
        _wait_for(log, "startup attempt 2 failed: kafka unavailable: kafka", process, 60)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1)
        broker.start()
        logged = _wait_for(log, "listening on ws://", process, 90)
        assert "Traceback" not in logged
        base = f"http://127.0.0.1:{http_port}"
        assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
        # It serves: a registration and a login go through PostgreSQL.
        reply = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"username": "late", "password": "correct horse battery"},
            timeout=30,
        )
        assert reply.status_code == 201, reply.text
        reply = httpx.post(
            f"{base}/api/v1/auth/login",
            json={
                "login": "late",
                "password": "correct horse battery",
                "device": "d",
                "platform": "t",
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        broker.kill()


def test_serve_gives_up_on_a_redis_that_never_comes_after_the_deadline(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    config = tmp_path / "sandcat.toml"
    config.write_text("[server]\nstartup_timeout_s = 5\n")
    # Migrated first, so that each attempt is quick on a loaded machine: the
    # deadline is spent on retries, not on a first attempt's migrations.
    assert main(["migrate", "--data-dir", str(tmp_path / "data")]) == 0
    capsys.readouterr()
    clean_env.setenv("SANDCAT_REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    argv = ["serve", "--config", str(config), "--data-dir", str(tmp_path / "data")]
    began = time.monotonic()
    assert main([*argv, "--ws-port", "0", "--http-port", "0"]) == 1
    took = time.monotonic() - began
    err = capsys.readouterr().err
    assert took >= 5, err
    # One line per attempt (the server's log goes to stderr; here pytest captures it).
    logged = caplog.text
    assert "startup attempt 1 failed: redis unavailable: redis unreachable" in logged
    assert "startup attempt 2 failed: redis unavailable" in logged
    assert "trying again in" in logged
    last = err.strip().splitlines()[-1]
    assert last.startswith("sandcat: storage unavailable: redis unreachable"), last
    assert "server.startup_timeout_s = 5)" in last
    assert "attempts in" in last
    assert "Traceback" not in err


def test_a_startup_timeout_of_0_exits_at_the_first_failure(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "sandcat.toml"
    config.write_text("[server]\nstartup_timeout_s = 0\n")
    clean_env.setenv("SANDCAT_REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    argv = ["serve", "--config", str(config), "--data-dir", str(tmp_path / "data")]
    assert main([*argv, "--ws-port", "0", "--http-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "startup attempt" not in err
    assert "(gave up after 1 attempt in" in err


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    assert backoff_s(1, lambda: 1.0) == FIRST_BACKOFF_S
    assert backoff_s(1, lambda: 0.0) == FIRST_BACKOFF_S / 2
    assert backoff_s(2, lambda: 1.0) == FIRST_BACKOFF_S * 2
    assert backoff_s(30, lambda: 1.0) == MAX_BACKOFF_S
    assert backoff_s(10_000, lambda: 0.0) == MAX_BACKOFF_S / 2


@pytest.mark.parametrize(
    ("error", "backend"),
    [
        (StoreUnavailable("postgres unreachable: refused"), "postgresql"),
        (StoreUnavailable("redis unreachable: refused"), "redis"),
        (BusUnavailable("kafka topic 'x' cannot be read: timed out"), "kafka"),
        (StoreUnavailable("mongodb call took over 1 s"), "mongodb"),
        (StoreUnavailable("s3 head failed: ConnectError"), "s3"),
        (StoreUnavailable("sqlite read failed: locked"), "sqlite"),
        (StoreUnavailable("blob write failed: full"), "blob storage"),
        (BroadcastUnavailable("subscription ended"), "redis"),
        (BusUnavailable("a subscriber did not keep up"), "bus"),
        (StoreUnavailable("database is closed"), "storage"),
        (Unavailable("busy"), "backend"),
    ],
)
def test_the_log_line_names_the_backend(error: Unavailable, backend: str) -> None:
    assert backend_of(error) == backend


def test_only_outages_are_retried_through_exception_groups() -> None:
    down = StoreUnavailable("postgres unreachable")
    assert unavailable_in(down) is down
    assert unavailable_in(ExceptionGroup("g", [ExceptionGroup("h", [down])])) is down
    assert unavailable_in(ExceptionGroup("g", [down, ValueError("bug")])) is None
    assert unavailable_in(ValueError("bug")) is None
    held = LocalStoreUnavailable("sandcat.db is in use by another sandcat serve")
    assert unavailable_in(held) is None
    assert unavailable_in(ExceptionGroup("g", [held])) is None


async def test_an_attempt_that_hangs_is_cut_by_the_deadline() -> None:
    async def hangs(task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        with pytest.raises(StartupGaveUp) as caught:
            await start_with_retry(nursery, hangs, timeout_s=0.5)
    assert caught.value.failure is None
    assert "the first attempt did not finish (gave up after 1 attempt in" in str(caught.value)


async def test_a_bug_at_startup_is_not_retried() -> None:
    attempts = 0

    async def broken(task_status: trio.TaskStatus[None]) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("a bug")

    async with trio.open_nursery() as nursery:
        with pytest.raises(ValueError, match="a bug"):
            await start_with_retry(nursery, broken, timeout_s=30)
    assert attempts == 1


async def test_a_start_that_fails_twice_then_succeeds_returns_its_value() -> None:
    attempts = 0

    async def flaky(task_status: trio.TaskStatus[str]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise StoreUnavailable("postgres unreachable: refused")
        task_status.started("up")

    async with trio.open_nursery() as nursery:
        assert await start_with_retry(nursery, flaky, timeout_s=30, rand=lambda: 0.0) == "up"
    assert attempts == 3
