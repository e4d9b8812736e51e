"""Descriptors are budgeted per user, per address and per listener (issue 12, item 5).

The attack: one access token opened 681 WebSocket connections (HELLO took any
device id), after which the victim's logins and requests timed out; bare TCP
connections that never upgraded did the same. Now a user holds at most
``max_connections_per_user`` connections, an address at most
``max_unauthenticated_per_address`` sockets before HELLO, and the listener
counts sockets from accept and stops short of the descriptor limit, so the
HTTP API keeps answering.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import trio

from sandcat.app import Server
from tests.security.proc_stats import attacked_server, descriptors, http_api
from tests.security.slow_client import Refused, SlowReader


async def _bare(port: int, source: str) -> trio.socket.SocketType:
    """A TCP connection from ``source`` that never sends a byte."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    return sock


async def _closed_by_server(sock: trio.socket.SocketType, within_s: float) -> bool:
    with trio.move_on_after(within_s):
        try:
            return await sock.recv(1) == b""
        except ConnectionResetError:
            return True
    return False


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"gateway.max_unauthenticated_per_address": 5}


async def test_bare_sockets_per_address_are_capped(server: Server) -> None:
    with trio.fail_after(20):
        held = [await _bare(server.ws_port, "127.0.0.3") for _ in range(5)]
        for sock in held:
            assert not await _closed_by_server(sock, 0.05)
        extra = await _bare(server.ws_port, "127.0.0.3")
        assert await _closed_by_server(extra, 5)
        # Other addresses are served.
        other = await _bare(server.ws_port, "127.0.0.4")
        assert not await _closed_by_server(other, 0.2)
        for sock in [*held, extra, other]:
            sock.close()


@pytest.mark.slow
async def test_http_answers_while_the_websocket_listener_is_saturated(tmp_path: Path) -> None:
    limit = 400
    sources = [f"127.0.0.{n}" for n in range(2, 10)]
    async with attacked_server(tmp_path, max_descriptors=limit) as served:
        async with http_api(served) as api:
            alice = await api.account()
        pid = served.process.pid
        attack: list[trio.socket.SocketType] = []
        with trio.fail_after(60):
            for source in sources:
                for _ in range(60):
                    attack.append(await _bare(served.ws_port, source))
            await trio.sleep(2.5)  # those over the limit are refused and closed
            held = descriptors(pid)
            started = time.monotonic()
            async with http_api(served) as api:
                with trio.fail_after(5):
                    login = await api.login(alice.username, alice.password, "phone")
                    me = await api.http.get("/api/v1/users/me", headers=api.auth(login))
            took = time.monotonic() - started
            with pytest.raises(Refused) as refused:
                await SlowReader.connect(served.ws_port)
        print(
            f"{len(attack)} bare sockets from {len(sources)} addresses: server holds {held} "
            f"descriptors of {limit}; login + GET /users/me took {took * 1000:.0f} ms; "
            f"upgrade answered {refused.value.status}"
        )
        for sock in attack:
            sock.close()
        assert me.status_code == 200
        assert refused.value.status == 503
        assert held < limit - 100
