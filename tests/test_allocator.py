"""``server.malloc_arena_max``: glibc's malloc arenas capped at startup (sandcat/allocator.py)."""

from __future__ import annotations

import ctypes.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sandcat.allocator import limit_arenas


def test_the_cap_is_applied_through_mallopt_on_glibc() -> None:
    assert limit_arenas(2, env={}).startswith("malloc arenas: at most 2 (glibc ")


def test_0_leaves_the_default_and_the_environment_wins() -> None:
    assert "glibc's default" in limit_arenas(0, env={})
    assert "MALLOC_ARENA_MAX=4 from the environment" in limit_arenas(
        2, env={"MALLOC_ARENA_MAX": "4"}
    )


def test_another_c_library_is_skipped_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda _name: "libnot-a-libc.so.9")
    assert (
        limit_arenas(2, env={}) == "malloc arenas: not glibc, server.malloc_arena_max not applied"
    )


def test_serve_logs_the_arenas_before_it_starts(tmp_path: Path) -> None:
    # A port in use stops serve right after the cap is applied: no server runs.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDCAT_", "MALLOC_"))}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["serve", "--data-dir", str(tmp_path), "--ws-port", port, "--http-port", "0"]
        done = subprocess.run(
            [sys.executable, "-m", "sandcat", *argv, "--log-level", "INFO"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    assert done.returncode == 1, done.stderr
    assert "malloc arenas: at most 2 (glibc" in done.stderr, done.stderr
