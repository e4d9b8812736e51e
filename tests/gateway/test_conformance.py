"""RFC 6455 conformance of the gateway's transport: the Autobahn cases via kosoku.

kosoku (PyPI) drives the Autobahn test suite's cases against an echo server.
The echo server exists only here: it is the gateway's own transport
(``sandcat.gateway.transport``) with an echo loop instead of a Connection.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import trio

from sandcat.gateway.transport import ConnectionClosed, Flusher, adopt, read_upgrade

#: The main groups: framing, pings/pongs, reserved bits, opcodes,
#: fragmentation, UTF-8 handling, close handling (9.* is performance,
#: 12.*/13.* compression, which the gateway does not negotiate).
_GROUPS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*"]
#: Verdicts that pass: Autobahn calls some allowed variations NON-STRICT,
#: and report-only cases INFORMATIONAL.
_PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
_KOSOKU = shutil.which("kosoku", path=str(Path(sys.executable).parent)) or shutil.which("kosoku")


async def _echo(sock: socket.socket, flusher: Flusher) -> None:
    upgrade = await read_upgrade(sock, flusher, timeout_s=5)
    if upgrade is None:
        return
    ws = upgrade.accept(None, max_message_bytes=16 * 1024 * 1024)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.writer, 5.0)
            try:
                while True:
                    message = await ws.receive()
                    if isinstance(message, str):
                        ws.send_text(message)
                    else:
                        ws.send(message)
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()
    finally:
        await ws.aclose(1000, "", keep_queued=True, timeout_s=5)


async def _serve_echo(nursery: trio.Nursery) -> int:
    flusher = Flusher()
    nursery.start_soon(flusher.run)
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def accept() -> None:
        with listener.socket:
            while True:
                accepted, _ = await listener.socket.accept()
                nursery.start_soon(_echo, adopt(accepted), flusher)

    nursery.start_soon(accept)
    return int(listener.socket.getsockname()[1])


async def _run_kosoku(port: int, cases: list[str], out: Path) -> dict[str, dict[str, object]]:
    """Run ``cases`` (ids or globs) against the echo server; each case's result by id."""
    command = [_KOSOKU or "kosoku", "-o", str(out), f"127.0.0.1:{port}"]
    for case in cases:
        command += ["-i", case]
    with trio.fail_after(60):
        done = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode in (0, 1), done.stderr.decode()[-2000:]  # 1: a case failed
    (agent,) = json.loads((out / "index.json").read_text()).values()
    return dict(agent)


def _failed(results: dict[str, dict[str, object]]) -> dict[str, tuple[object, object]]:
    verdicts = {case: (r["behavior"], r["behaviorClose"]) for case, r in results.items()}
    return {case: v for case, v in verdicts.items() if not set(v) <= _PASSING}


def _killed_by_timer(out: Path, result: dict[str, object]) -> bool:
    """True if the case ended by the client's own kill timer (wire log ``KLE``)."""
    wirelog = json.loads((out / str(result["reportfile"])).read_text())["wirelog"]
    return bool(wirelog) and wirelog[-1] == ["KLE"]


async def test_transport_passes_the_autobahn_cases(nursery: trio.Nursery, tmp_path: Path) -> None:
    assert _KOSOKU is not None, "kosoku (the dev extra) is not installed"
    port = await _serve_echo(nursery)
    results = await _run_kosoku(port, _GROUPS, tmp_path / "all")
    assert len(results) > 200, sorted(results)  # every group ran
    failed = _failed(results)
    # Cases 6.5-6.23 kill the connection 0.5 s after sending (every other case
    # waits 1 s or more): a loaded machine can stall the echo server or kosoku
    # that long, and the case then fails with the kill in its wire log
    # (bench/RESULTS.md, the Autobahn flake). Those alone are run once more: a
    # real conformance fault does not depend on timing (the parser's outcome
    # does not depend on how TCP splits the bytes: test_frames.py), a stall
    # does not repeat.
    stalled = [
        case
        for case in failed
        if case.startswith("6.") and _killed_by_timer(tmp_path / "all", results[case])
    ]
    assert set(failed) == set(stalled), failed
    if stalled:
        again = await _run_kosoku(port, stalled, tmp_path / "again")
        assert sorted(again) == sorted(stalled)
        assert not _failed(again), (failed, _failed(again))
