"""What a server process holds, read from /proc, and a ``sandcat serve`` to attack.

The resource attack tests run the server as a child process so that its memory,
CPU time and descriptors are its own and can be read from ``/proc/PID``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.e2e.process import ServeProcess, serve_process
from tests.scene import Account, Api

_MIB = 1024 * 1024


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)  # pragma: no cover - every Linux process has these


def rss_mib(pid: int) -> float:
    """Resident memory now."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The highest resident memory since the process started or ``reset_peak``."""
    return _status_kb(pid, "VmHWM") / 1024


def reset_peak(pid: int) -> None:
    """Start ``peak_rss_mib`` again from the current RSS (proc(5): clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


def descriptors(pid: int) -> int:
    """Open file descriptors."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_s(pid: int) -> float:
    """User plus system CPU time used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _with_descriptors(limit: int) -> tuple[str, ...]:
    """A command prefix that sets the open-files limit (soft and hard), then execs the rest."""
    script = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit})); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    return (sys.executable, "-c", script)


@asynccontextmanager
async def attacked_server(
    tmp_path: Path,
    config: str = "",
    env: dict[str, str] | None = None,
    max_descriptors: int | None = None,
) -> AsyncIterator[ServeProcess]:
    """``sandcat serve`` as a child, configured by the TOML text ``config``, with at
    most ``max_descriptors`` open files if given."""
    path = tmp_path / "sandcat.toml"
    path.write_text(config)
    prefix = () if max_descriptors is None else _with_descriptors(max_descriptors)
    async with serve_process(
        tmp_path / "data", "--config", str(path), env=env, prefix=prefix
    ) as served:
        yield served


@asynccontextmanager
async def http_api(served: ServeProcess) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=served.http_url, timeout=30) as http:
        yield Api(http)


async def accounts(served: ServeProcess, count: int) -> list[Account]:
    async with http_api(served) as api:
        return [await api.account() for _ in range(count)]
