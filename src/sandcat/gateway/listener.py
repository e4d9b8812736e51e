"""The WebSocket listener: handshake rules of PROTOCOL.md §1, then a Connection."""

from __future__ import annotations

import logging
import socket

import trio
from trio_websocket import WebSocketRequest, WebSocketServer, serve_websocket

import sandcat.websocket  # noqa: F401  (applies trio-websocket fixes)
from sandcat.config import GatewayConfig
from sandcat.gateway.connection import Connection
from sandcat.gateway.hub import Hub
from sandcat.gateway.operations import Operations
from sandcat.metrics import ServerMetrics
from sandcat.protocol import Limits

log = logging.getLogger(__name__)

SUBPROTOCOL = "sandcat.v1"
PATH = "/ws"


def _bearer(request: WebSocketRequest) -> str | None:
    for name, value in request.headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


async def serve_gateway(
    *,
    host: str,
    port: int,
    hub: Hub,
    operations: Operations,
    config: GatewayConfig,
    limits: Limits,
    connections: trio.Nursery,
    metrics: ServerMetrics | None = None,
    listen_fd: int | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept WebSocket connections until cancelled; each runs in ``connections``.

    ``listen_fd`` is a listening socket inherited from ``sandcat serve --workers``
    (every worker accepts from it) instead of ``host:port``.

    Cancelling this task stops accepting; connections already open keep running
    in their own nursery so a drain can finish them.
    """
    active = 0
    metrics = metrics or ServerMetrics.create()

    async def handler(request: WebSocketRequest) -> None:
        nonlocal active
        path = request.path.partition("?")[0]
        if path != PATH:
            await request.reject(404, body=b"not found: the chat socket is at /ws")
            return
        offered = request.proposed_subprotocols
        if offered and SUBPROTOCOL not in offered:
            await request.reject(400, body=b"unsupported subprotocol; offer sandcat.v1")
            return
        if active >= config.max_connections:
            await request.reject(503, body=b"too many connections")
            return
        ws = await request.accept(subprotocol=SUBPROTOCOL if offered else None)
        conn = Connection(
            ws,
            hub=hub,
            operations=operations,
            config=config,
            limits=limits,
            bearer=_bearer(request),
            metrics=metrics,
        )
        metrics.connections_opened.inc()
        active += 1
        try:
            await conn.run()
        finally:
            active -= 1

    if listen_fd is not None:
        listener = trio.SocketListener(
            trio.socket.from_stdlib_socket(socket.socket(fileno=listen_fd))
        )
        server = WebSocketServer(
            handler,
            [listener],
            handler_nursery=connections,
            max_message_size=limits.max_frame_bytes,
        )
        await server.run(task_status=task_status)
        return
    await serve_websocket(
        handler,
        host,
        port,
        ssl_context=None,
        handler_nursery=connections,
        max_message_size=limits.max_frame_bytes,
        task_status=task_status,
    )
