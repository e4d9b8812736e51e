"""The server under test: a ``sandcat serve`` child process, or one already running.

The bench starts the server in embedded mode on free ports with a small TOML
configuration, waits until it listens, and (when the machine has two CPUs or
more and allows it) pins it to CPU 0 and the load generator to CPU 1 once
the accounts are set up, so the measured phase runs one server core against
one client core.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

_LISTENING = re.compile(rb"listening on ws://[^:]+:(\d+)/ws and http://[^:]+:(\d+)")
_START_TIMEOUT_S = 60
_METRIC_LINE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


@dataclass
class Target:
    """Where the load goes; ``pid`` is set when the bench runs the server itself."""

    host: str
    ws_port: int
    http_port: int
    pid: int | None = None
    config: dict[str, object] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def rss_bytes(self) -> int | None:
        """The server's resident set size, when it is a local child process."""
        if self.pid is None:
            return None
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return None  # pragma: no cover - every Linux process has VmRSS

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server has used so far."""
        if self.pid is None:
            return None
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    async def metrics(self) -> dict[str, float]:
        """The server's ``GET /metrics`` as ``{"name{labels}": value}``."""
        async with httpx.AsyncClient(timeout=10) as http:
            reply = await http.get(f"{self.http_url}/metrics")
        reply.raise_for_status()
        values: dict[str, float] = {}
        for line in reply.text.splitlines():
            match = _METRIC_LINE.match(line)
            if match:
                values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        return values


def two_cores() -> bool:
    """Whether server and load generator can each have a CPU of their own."""
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return False


def _threads(pid: int) -> list[int]:
    """Every thread of ``pid`` (0: this process): affinity is per thread on Linux."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid or os.getpid()}/task")]
    except OSError:  # pragma: no cover - non-Linux
        return [pid]


def pin(pid: int, cpu: int) -> bool:
    """Pin every thread of ``pid`` (0: this process) to one CPU.

    Threads started later inherit the CPU of the thread that starts them.
    False where the machine does not allow it or has a single CPU.
    """
    try:
        allowed = sorted(os.sched_getaffinity(0) | os.sched_getaffinity(pid))
        if len(allowed) < 2:
            return False
        for tid in _threads(pid):
            os.sched_setaffinity(tid, {allowed[cpu % len(allowed)]})
    except (AttributeError, OSError):
        return False
    return True


def unpin(pid: int) -> None:
    try:
        for tid in _threads(pid):
            os.sched_setaffinity(tid, range(os.cpu_count() or 1))
    except (AttributeError, OSError):
        pass  # nothing was pinned, or the process is gone


def _toml(config: Mapping[str, object]) -> str:
    sections: dict[str, list[str]] = {}
    for dotted, value in config.items():
        section, _, key = dotted.partition(".")
        rendered = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else (f'"{value}"' if isinstance(value, str) else str(value))
        )
        sections.setdefault(section, []).append(f"{key} = {rendered}")
    return "".join(f"[{name}]\n" + "\n".join(lines) + "\n\n" for name, lines in sections.items())


@asynccontextmanager
async def spawn(data_dir: Path, config: Mapping[str, object]) -> AsyncIterator[Target]:
    """Run ``python -m sandcat serve`` with ``config`` (dotted keys) until the block ends."""
    config_file = data_dir / "bench.toml"
    await trio.to_thread.run_sync(lambda: data_dir.mkdir(parents=True, exist_ok=True))
    await trio.to_thread.run_sync(config_file.write_text, _toml(config))
    command = [
        sys.executable,
        "-m",
        "sandcat",
        "serve",
        "--config",
        str(config_file),
        "--data-dir",
        str(data_dir),
        "--ws-port",
        "0",
        "--http-port",
        "0",
        "--log-level",
        "WARNING",
    ]
    process = await trio.lowlevel.open_process(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    output = bytearray()
    try:
        with trio.fail_after(_START_TIMEOUT_S):
            while (found := _LISTENING.search(output)) is None:
                chunk = await process.stdout.receive_some(65536)
                if not chunk:
                    raise RuntimeError(f"sandcat exited before listening:\n{output.decode()}")
                output += chunk
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                assert process.stdout is not None
                while chunk := await process.stdout.receive_some(65536):
                    sys.stderr.buffer.write(chunk)

            nursery.start_soon(drain)
            yield Target(
                "127.0.0.1",
                int(found.group(1)),
                int(found.group(2)),
                pid=process.pid,
                config=dict(config),
            )
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(15) as cleanup:
            cleanup.shield = True
            await process.wait()
        if process.returncode is None:
            process.kill()


def machine() -> dict[str, object]:
    """Facts about the machine a result was measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover - non-Linux
        pass
    memory = 0
    try:
        with open("/proc/meminfo") as meminfo:
            memory = int(meminfo.readline().split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pinned": two_cores(),
    }
