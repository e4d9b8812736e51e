"""The client's patch of trio-websocket's ping handler (upstream python-trio/trio-websocket#184).

A ping that crosses our close frame must go unanswered: wsproto refuses to
send a pong after a close (RFC 6455 §5.5.1) and trio-websocket 0.12.2 lets
that error escape the reader task. The first test fails the day an upstream
release answers such a ping safely by itself: then drop the patch from
sandcat/client/websocket.py (and this file).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio_websocket import WebSocketConnection
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import CloseConnection, Ping
from wsproto.utilities import LocalProtocolError

from sandcat.client.websocket import UPSTREAM_PING_HANDLER


def _client(*, closing: bool) -> tuple[WebSocketConnection, trio.testing.MemorySendStream]:
    """A client connection over an in-memory stream; ``closing``: its close frame sent."""
    wire = trio.testing.MemorySendStream()
    protocol = Connection(ConnectionType.CLIENT)
    connection = WebSocketConnection(
        trio.StapledStream(wire, trio.testing.MemoryReceiveStream()),
        protocol,  # type: ignore[arg-type]  # the handshake is done: a plain Connection
        host="localhost",
        path="/ws",
    )
    if closing:
        protocol.send(CloseConnection(code=1000))
        assert protocol.state is ConnectionState.LOCAL_CLOSING
    return connection, wire


async def test_upstream_still_answers_a_ping_after_our_close() -> None:
    connection, _ = _client(closing=True)
    with pytest.raises(LocalProtocolError):
        await UPSTREAM_PING_HANDLER(connection, Ping(b"late"))


async def test_the_client_leaves_a_ping_after_its_close_unanswered() -> None:
    connection, wire = _client(closing=True)
    await connection._handle_ping_event(Ping(b"late"))
    with pytest.raises(trio.WouldBlock):  # nothing was written
        wire.get_data_nowait()


async def test_the_client_answers_a_ping_while_open() -> None:
    connection, wire = _client(closing=False)
    await connection._handle_ping_event(Ping(b"hi"))
    pong = wire.get_data_nowait()
    assert pong[0] == 0x8A  # FIN + pong
