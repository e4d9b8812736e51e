"""Ephemeral signals, assembled: typing, presence and calls behind one entry point.

``Operations`` hands TYPING, PRESENCE_SET and CALL frames to ``handle`` and
calls ``connected`` after a HELLO; the hub calls ``left`` when a connection
closes. ``open_signals`` opens the books (in memory, or Redis when
``backends.redis_url`` is set: then every instance shares them) and runs the
tasks: the beacon (cross-instance delivery), the presence flusher and
refresher, and the call timers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from sandcat.bus.broadcast import open_broadcast
from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.domain.ratelimit import Limiters
from sandcat.gateway.beacon import Beacon, Outlets
from sandcat.gateway.calls import CallDesk, Caller
from sandcat.gateway.indicators import Indicators
from sandcat.gateway.presence import PresenceDesk
from sandcat.pipeline import Pipeline
from sandcat.protocol import Call, PresenceSet, Typing
from sandcat.store.calls import CallBook, MemoryCallBook
from sandcat.store.presence import MemoryPresenceBook, PresenceBook
from sandcat.store.reach import ReachStore


@dataclass(frozen=True, slots=True)
class Signals:
    indicators: Indicators
    presence: PresenceDesk
    calls: CallDesk

    async def handle(self, conn: Caller, frame: Typing | PresenceSet | Call) -> None:
        match frame:
            case Typing():
                await self.indicators.typing(conn, frame)
            case PresenceSet():
                await self.presence.choose(conn, frame)
            case Call():
                await self.calls.handle(conn, frame)

    async def connected(self, conn: Caller) -> None:
        await self.presence.connected(conn)

    def left(self, conn: Caller) -> None:
        """A connection closed (the hub's ``on_leave``): presence, then its call."""
        if conn.user:
            self.presence.left(conn)


@asynccontextmanager
async def _open_books(config: Config) -> AsyncIterator[tuple[PresenceBook, CallBook]]:
    backends = config.backends
    if not backends.redis_url:
        yield MemoryPresenceBook(), MemoryCallBook()
        return
    from sandcat.store.redis import open_redis_books

    async with open_redis_books(
        backends.redis_url,
        prefix=f"{backends.redis_channel}:",
        timeout_s=backends.redis_timeout_s,
    ) as books:
        yield books.presence, books.calls


@asynccontextmanager
async def open_signals(
    config: Config,
    *,
    reach: ReachStore,
    hub: Outlets,
    pipeline: Pipeline,
    instance: str,
    clock: Clock,
    limiters: Limiters,
) -> AsyncIterator[Signals]:
    """Typing, presence and calls, running until the block exits."""
    settings = config.signals
    async with (
        _open_books(config) as (presence_book, call_book),
        open_broadcast(
            config.backends.redis_url,
            channel=f"{config.backends.redis_channel}.signals",
            timeout_s=config.backends.redis_timeout_s,
        ) as broadcast,
    ):
        beacon = Beacon(hub, broadcast, instance=instance)
        signals = Signals(
            indicators=Indicators(
                reach,
                beacon,
                interval_s=settings.typing_interval_s,
                per_user=limiters.limiter(
                    "typing-user", limit=settings.typing_per_user, window_s=settings.typing_window_s
                ),
            ),
            presence=PresenceDesk(
                presence_book,
                reach,
                beacon,
                hub,
                instance=instance,
                clock=clock,
                batch_s=settings.presence_batch_ms / 1000,
                refresh_s=settings.presence_refresh_s,
            ),
            calls=CallDesk(
                call_book,
                reach,
                beacon,
                presence_book,
                pipeline,
                hub,
                config=config.calls,
                clock=clock,
                claim_ttl_s=settings.presence_refresh_s * 3,
                open_direct=config.chat.dm_policy == "anyone",
            ),
        )
        signals.presence.on_gone = signals.calls.left
        async with trio.open_nursery() as nursery:
            await nursery.start(beacon.run)
            await nursery.start(signals.presence.run)
            await nursery.start(signals.calls.run)
            yield signals
            nursery.cancel_scope.cancel()


async def run_signals(
    config: Config,
    *,
    scope: trio.CancelScope,
    reach: ReachStore | None,
    hub: Outlets,
    pipeline: Pipeline,
    instance: str,
    clock: Clock,
    limiters: Limiters,
    task_status: trio.TaskStatus[Signals] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the signals inside ``scope`` (cancelled at shutdown); started with them."""
    if reach is None:  # pragma: no cover - both database backends provide it
        raise RuntimeError("the store backend has no ReachStore")
    with scope:
        async with open_signals(
            config,
            reach=reach,
            hub=hub,
            pipeline=pipeline,
            instance=instance,
            clock=clock,
            limiters=limiters,
        ) as signals:
            task_status.started(signals)
            await trio.sleep_forever()
