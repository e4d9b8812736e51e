"""Opening the WebSocket: TCP (or TLS), the handshake, ``sandcat.v1``.

The SDK opens the byte stream itself and hands it to trio-websocket, for two
shortcomings of trio-websocket 0.12 that it works around here: a client's
stream is left open when the server closes first (so `Connection` closes it),
and a handshake the server cuts off waits for the timeout instead of failing.
A third is patched on import: a ping that crosses our close frame (below).
The gateway does not use trio-websocket (it has its own transport,
sandcat.gateway.transport).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import trio
from trio_websocket import HandshakeError, WebSocketConnection, wrap_client_stream
from wsproto.connection import ConnectionState
from wsproto.events import Ping

__all__ = ["MAX_INBOUND_BYTES", "SUBPROTOCOL", "ConnectionLost", "connect_websocket"]

SUBPROTOCOL = "sandcat.v1"

#: trio-websocket's own ping handler, kept to tell when upstream fixes it
#: (tests/client/test_websocket_patch.py).
UPSTREAM_PING_HANDLER = WebSocketConnection._handle_ping_event


async def _pong_while_open(self: WebSocketConnection, event: Ping) -> None:
    # trio-websocket 0.12.2 answers every ping, even one that crosses our close
    # frame; wsproto then refuses the pong (LocalProtocolError), which escapes
    # the connection's reader task and takes the caller's nursery down. After a
    # close frame nothing but the close handshake may be sent (RFC 6455 §5.5.1),
    # so such a ping goes unanswered. Upstream: python-trio/trio-websocket#184;
    # this is the fix proposed there in #198. Remove once a release carries it.
    if self._wsproto.state is ConnectionState.OPEN:
        await self._send(event.response())


WebSocketConnection._handle_ping_event = _pong_while_open  # type: ignore[method-assign]

#: Largest frame accepted from the server. ``max_frame_bytes`` bounds what a
#: client sends; replies are bigger (a PULL of 200 messages of 16 KiB is
#: ~3.3 MiB), so the client allows 16 MiB, the most a server may configure.
MAX_INBOUND_BYTES = 16 * 2**20


class ConnectionLost(Exception):
    """The socket closed before the reply arrived (the request may have run)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection lost ({code}): {reason}")
        self.code = code
        self.reason = reason


async def connect_websocket(
    url: str, nursery: trio.Nursery, *, timeout_s: float, tls: ssl.SSLContext | None = None
) -> tuple[WebSocketConnection, trio.abc.Stream]:
    """Connect to ``url`` (``ws://`` or ``wss://``), offering ``sandcat.v1``.

    ``tls`` is the TLS context for ``wss://`` (default: the system's trusted
    certificates). The WebSocket's reader task runs in ``nursery``. Returns the WebSocket
    and the stream under it, which the caller must close.

    Raises:
        ConnectionLost: the connection or the handshake failed or timed out.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
            if secure:
                context = tls or ssl.create_default_context()
                stream = trio.SSLStream(stream, context, server_hostname=host)
            stream = _HandshakeWatch(stream)
            with trio.CancelScope() as handshake:
                stream.on_eof = handshake.cancel
                ws = await wrap_client_stream(
                    nursery,
                    # It needs only the Stream methods; the annotation is narrower.
                    cast(trio.SocketStream, stream),
                    host if parts.port is None else f"{host}:{port}",
                    resource,
                    subprotocols=[SUBPROTOCOL],
                    max_message_size=MAX_INBOUND_BYTES,
                )
            stream.on_eof = None
            if handshake.cancelled_caught:
                raise HandshakeError("the server closed the connection during the handshake")
    except (OSError, HandshakeError, trio.TooSlowError, trio.BrokenResourceError) as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise ConnectionLost(None, f"cannot connect to {url}: {exc!r}") from exc
    return ws, stream


class _HandshakeWatch(trio.abc.Stream):
    """A stream that reports its end, so a handshake the server cut off fails
    at once: trio-websocket 0.12 would wait for its open handshake until the
    timeout."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self.on_eof: Callable[[], None] | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            data = await self._stream.receive_some(max_bytes)
        except trio.BrokenResourceError:
            self._ended()
            raise
        if not data:
            self._ended()
        return data

    async def aclose(self) -> None:
        await self._stream.aclose()

    def _ended(self) -> None:
        if self.on_eof is not None:
            self.on_eof()
