"""A running instance as its starter sees it, and what binds and stops it.

``Server`` is what ``run_server`` hands out once it is ready; ``wait_for_stop``
returns when it is told to shut down (or, when asked, on SIGTERM/SIGINT).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import trio

from sandcat.config import Config
from sandcat.errors import ListenError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Server:
    """A running instance, handed out by ``run_server`` once it is ready."""

    #: The WebSocket port (0: this role does not listen for WebSockets).
    ws_port: int
    http_port: int
    #: This process's name on the bus and in the outbox.
    instance: str = ""
    #: ``server.role`` (docs/roles.md).
    role: str = "all"
    _stop: trio.Event = field(default_factory=trio.Event)

    def shutdown(self) -> None:
        """Begin the drain; ``run_server`` returns when it is done."""
        self._stop.set()


@contextmanager
def listening(host: str, port: int, setting: str) -> Iterator[None]:
    """Name the address and the setting when a listener cannot bind (port in use)."""
    try:
        yield
    except (OSError, BaseExceptionGroup) as exc:
        # hypercorn's bind fails inside its nursery: the OSError arrives in a group.
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]
        if not isinstance(cause, OSError) or isinstance(cause, ListenError):
            raise
        raise ListenError(host, port, f"server.{setting}", cause) from exc


def with_bound_ws_url(config: Config, ws_port: int) -> Config:
    """Pin the URL login hands out to the port actually bound (``ws_port = 0``)."""
    if config.server.public_ws_url:
        return config
    bound = replace(config.server, ws_port=ws_port)
    return replace(
        config, server=replace(bound, public_ws_url=replace(config, server=bound).ws_url)
    )


async def wait_for_stop(server: Server, handle_signals: bool) -> None:
    if not handle_signals:
        await server._stop.wait()
        return
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    log.info("received %s", signal.Signals(signum).name)
                    server.shutdown()
                    return

            nursery.start_soon(on_signal)
            await server._stop.wait()
            nursery.cancel_scope.cancel()
