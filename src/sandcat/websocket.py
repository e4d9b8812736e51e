"""trio-websocket as Sandcat uses it, with the fixes it needs until upstream has them.

Imported for its side effect by the client SDK (the gateway has its own
transport, sandcat.gateway.transport).
"""

from __future__ import annotations

from trio_websocket import WebSocketConnection
from wsproto.connection import ConnectionState
from wsproto.events import Ping


async def _pong_while_open(self: WebSocketConnection, event: Ping) -> None:
    # trio-websocket 0.12.2 answers every ping, even one that crosses our close
    # frame; wsproto then refuses the pong (LocalProtocolError), which escapes
    # the connection's reader task and takes the whole connections nursery,
    # i.e. the server, down -- any client could do it. After a close frame
    # nothing but the close handshake may be sent (RFC 6455 §5.5.1), so such a
    # ping goes unanswered. Upstream: python-trio/trio-websocket#184; this is
    # the fix proposed there in #198. Remove once a release carries it.
    if self._wsproto.state is ConnectionState.OPEN:
        await self._send(event.response())


WebSocketConnection._handle_ping_event = _pong_while_open  # type: ignore[method-assign]
