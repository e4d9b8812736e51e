"""Serving the API with hypercorn on Trio."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

#: Seconds in-flight requests get to finish once shutdown is triggered.
_GRACEFUL_TIMEOUT_S = 5.0


def _bind(host: str, port: int) -> int:
    """Bind as hypercorn would, but close the socket when the bind fails (hypercorn
    leaks it); the descriptor, which hypercorn then owns."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock.detach()


async def serve_http(
    app: QuartTrio,
    *,
    host: str,
    port: int,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[None]],
    listen_fd: int | None = None,
    tls: tuple[str, str] | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown_trigger`` returns.

    ``task_status.started`` gets the bound port (useful with ``port=0``) once
    the socket is listening, so connections made after ``nursery.start``
    returns are accepted. ``tls`` (certificate file, key file) serves HTTPS.
    """
    config = HypercornConfig()
    if listen_fd is None:
        listen_fd = _bind(host, port)
    # A listening socket inherited from ``serve --workers``, or bound here.
    config.bind = [f"fd://{listen_fd}"]
    if tls is not None:
        config.certfile, config.keyfile = tls
    config.graceful_timeout = _GRACEFUL_TIMEOUT_S
    config.accesslog = None
    # Hypercorn's errors go through our logging setup, not a handler of its own.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(run)
        # hypercorn reports e.g. "http://127.0.0.1:50001" or "http://[::1]:50001".
        task_status.started(int(binds[0].rsplit(":", 1)[1]))
