"""``sandcat serve`` as a real child process, for crash and shutdown tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from tests.passwords import serve_environment

_LISTENING = re.compile(rb"listening on wss?://[^:]+:(\d+)/ws and https?://[^:]+:(\d+)")
#: A cold start imports quart, hypercorn and argon2: allow for a slow machine.
START_TIMEOUT_S = 30


@dataclass
class ServeProcess:
    process: trio.Process
    ws_port: int
    http_port: int
    output: bytearray

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def kill(self) -> None:
        self.process.kill()

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout_s: float = 15) -> int:
        with trio.fail_after(timeout_s):
            return await self.process.wait()


@asynccontextmanager
async def serve_process(
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    runner: Sequence[str] = ("-m", "tests.serve"),
) -> AsyncIterator[ServeProcess]:
    """Start ``sandcat serve`` (tests/serve.py) on free ports; kill it on exit if running.

    ``env`` adds to the environment (``SANDCAT_DATABASE_URL`` for PostgreSQL);
    ``prefix`` runs the server through a command that execs it (``prlimit ...``);
    ``runner`` is what the interpreter runs (``-m tests.without MODULES``: drivers hidden).
    """
    env = serve_environment({**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    command = [
        *prefix,
        sys.executable,
        *runner,
        "serve",
        "--data-dir",
        str(data_dir),
        "--ws-port",
        "0",
        "--http-port",
        "0",
        "--log-level",
        "WARNING",
        *extra,
    ]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(START_TIMEOUT_S):
            while (found := _LISTENING.search(output)) is None:
                chunk = await process.stdout.receive_some(65536)
                if not chunk:
                    raise RuntimeError(f"sandcat exited before listening:\n{output.decode()}")
                output += chunk
        async with trio.open_nursery() as nursery:

            async def drain_output() -> None:
                assert process.stdout is not None
                while chunk := await process.stdout.receive_some(65536):
                    output.extend(chunk)

            nursery.start_soon(drain_output)
            yield ServeProcess(process, int(found.group(1)), int(found.group(2)), output)
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(10) as cleanup:
            cleanup.shield = True
            await process.wait()
            await process.stdout.aclose()


@contextmanager
def serve_in_background(data_dir: Path, *extra: str) -> Iterator[tuple[str, str]]:
    """``sandcat serve`` (tests/serve.py) for a whole module: a plain child process
    (no Trio), so a module-scoped fixture can share it between tests. Yields its
    ``(ws_url, http_url)``; its output goes to ``data_dir/serve.log``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve.log"
    command = [
        sys.executable,
        "-m",
        "tests.serve",
        "serve",
        "--data-dir",
        str(data_dir / "data"),
        "--ws-port",
        "0",
        "--http-port",
        "0",
        "--log-level",
        "WARNING",
        *extra,
    ]
    env = serve_environment({**os.environ, "PYTHONUNBUFFERED": "1"})
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (found := _LISTENING.search(log.read_bytes())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandcat did not start:\n{log.read_text()}")
            time.sleep(0.05)
        ws_port, http_port = int(found.group(1)), int(found.group(2))
        yield f"ws://127.0.0.1:{ws_port}/ws", f"http://127.0.0.1:{http_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
