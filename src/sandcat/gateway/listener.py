"""The WebSocket listener: handshake rules of protocol/SPEC.md §1, then a Connection."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from sandcat.config import GatewayConfig
from sandcat.gateway.admission import Admission, Verdict, descriptor_budget
from sandcat.gateway.connection import Connection
from sandcat.gateway.hub import Hub
from sandcat.gateway.operations import Operations
from sandcat.gateway.tls import handshake
from sandcat.gateway.transport import Flusher, Upgrade, adopt, read_upgrade
from sandcat.metrics import ServerMetrics
from sandcat.protocol import Limits
from sandcat.proxies import TrustedProxies
from sandcat.store.budgets import Budgets

log = logging.getLogger(__name__)

SUBPROTOCOL = "sandcat.v1"
PATH = "/ws"
#: Pending connections the kernel may hold before accept (capped by net.core.somaxconn).
BACKLOG = 4096
#: accept() errors that mean "out of descriptors or memory for now": wait, then retry.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RESOURCE_PAUSE_S = 0.1
#: How long a socket refused for the connection limit may take to send its upgrade.
_REFUSE_READ_S = 2.0
#: How long a socket refused for the connection limit may take to send its upgrade.
_REFUSE_READ_S = 2.0


@dataclass(frozen=True, slots=True)
class GatewayServer:
    """What the listener tells its starter: the port it bound."""

    port: int


def _bearer(upgrade: Upgrade) -> str | None:
    value = upgrade.header(b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:  # already reset by the client
        return "?"


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
    budgets: Budgets | None = None,
    proxies: TrustedProxies | None = None,
    tls: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[GatewayServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept WebSocket connections until cancelled; each runs in ``connections``.

    ``listen_fd`` is a listening socket inherited from ``sandcat serve --workers``
    (every worker accepts from it) instead of ``host:port``. ``proxies`` decide
    whose forwarding headers name the client (``Connection.address``, in logs).
    With ``tls`` every connection does a TLS handshake first (gateway/tls.py),
    within the time the upgrade has.

    Cancelling this task stops accepting; connections already open keep running
    in their own nursery (and so does the flusher that writes for them) so a
    drain can finish them.
    """
    proxies = proxies or TrustedProxies()
    metrics = metrics or ServerMetrics.create()
    flusher = Flusher()
    connections.start_soon(flusher.run)
    #: Large frames are decoded in a worker thread, one at a time (Connection._decode).
    decoders = trio.CapacityLimiter(1)
    admission = Admission(
        max_open=descriptor_budget(config.max_connections, config.reserved_descriptors),
        per_address=config.max_unauthenticated_per_address,
        # Behind a trusted proxy every client has the proxy's address: it limits them.
        exempt=proxies.trusts_peer,
    )

    async def handle(sock: socket.socket, address: str, verdict: Verdict) -> None:
        authenticated = False

        def on_authenticated() -> None:
            nonlocal authenticated
            authenticated = True
            admission.authenticated(address)

        try:
            await serve_one(sock, verdict, on_authenticated)
        except Exception:
            # A bug, not the client's fault: this socket is dropped and logged;
            # everyone else keeps being served.
            log.exception("WebSocket connection failed")
            sock.close()
        finally:
            admission.release(address, authenticated=authenticated)

    async def serve_one(
        sock: socket.socket, verdict: Verdict, on_authenticated: Callable[[], None]
    ) -> None:
        refused = verdict is Verdict.REFUSE
        read_s = min(config.auth_timeout_s, _REFUSE_READ_S) if refused else config.auth_timeout_s
        if tls is not None:
            wrapped = await handshake(tls, sock, timeout_s=read_s)
            if wrapped is None:
                return
            sock = wrapped
        upgrade = await read_upgrade(sock, flusher, timeout_s=read_s)
        if upgrade is None:
            return
        if upgrade.path != PATH:
            await upgrade.reject(
                404, b"not found: the chat socket is at /ws", timeout_s=config.send_timeout_s
            )
            return
        offered = upgrade.request.subprotocols
        if offered and SUBPROTOCOL not in offered:
            await upgrade.reject(
                400, b"unsupported subprotocol; offer sandcat.v1", timeout_s=config.send_timeout_s
            )
            return
        if refused:
            await upgrade.reject(503, b"too many connections", timeout_s=_REFUSE_READ_S)
            return
        ws = upgrade.accept(
            SUBPROTOCOL if offered else None, max_message_bytes=limits.max_frame_bytes
        )
        conn = Connection(
            ws,
            hub=hub,
            operations=operations,
            config=config,
            limits=limits,
            bearer=_bearer(upgrade),
            metrics=metrics,
            budgets=budgets,
            address=proxies.client(_peer(sock), upgrade.request.extra_headers),
            on_authenticated=on_authenticated,
            decoders=decoders,
        )
        metrics.connections_opened.inc()
        await conn.run()

    if listen_fd is not None:
        sockets = [trio.socket.from_stdlib_socket(socket.socket(fileno=listen_fd))]
    else:
        listeners = await trio.open_tcp_listeners(port, host=host, backlog=BACKLOG)
        sockets = [listener.socket for listener in listeners]
    bound = sockets[0].getsockname()[1]
    async with trio.open_nursery() as accepting:
        for listening in sockets:
            accepting.start_soon(_accept, listening, admission, handle, connections)
        task_status.started(GatewayServer(port=bound))


async def _accept(
    listening: trio.socket.SocketType,
    admission: Admission,
    handle: Callable[[socket.socket, str, Verdict], Awaitable[None]],
    connections: trio.Nursery,
) -> None:
    with listening:
        while True:
            try:
                accepted, peer = await listening.accept()
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                log.error("accept failed (%s); pausing %.1f s", exc, _RESOURCE_PAUSE_S)
                await trio.sleep(_RESOURCE_PAUSE_S)
                continue
            address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            verdict = admission.admit(address)
            if verdict is Verdict.DROP:
                accepted.close()
                continue
            connections.start_soon(handle, adopt(accepted), address, verdict)
