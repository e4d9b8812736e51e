"""Ephemeral signals, assembled: typing, presence and calls behind one entry point.

``Operations`` hands TYPING, PRESENCE_SET and CALL frames to ``handle`` and
calls ``connected`` after a HELLO and ``left`` when a connection closes.
``open_signals`` runs them over the shared books and broadcast
(``store/shared.py``: in memory, or Redis when ``backends.redis_url`` is
set, then every instance shares them) and runs the tasks: the beacon
(cross-instance delivery), the presence flusher and refresher, and the call
timers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.gateway.beacon import Beacon, Outlets
from sandcat.gateway.calls import CallDesk, Caller
from sandcat.gateway.indicators import Indicators
from sandcat.gateway.presence import PresenceDesk
from sandcat.pipeline import Pipeline
from sandcat.protocol import Call, PresenceSet, Typing
from sandcat.store.reach import ReachStore
from sandcat.store.shared import SharedState


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
        """A connection closed (``Operations.left``): presence, then its call."""
        if conn.user:
            self.presence.left(conn)


@asynccontextmanager
async def open_signals(
    config: Config,
    *,
    shared: SharedState,
    reach: ReachStore,
    hub: Outlets,
    pipeline: Pipeline,
    instance: str,
    clock: Clock,
) -> AsyncIterator[Signals]:
    """Typing, presence and calls over the shared books and broadcast, running until
    the block exits."""
    settings = config.signals
    beacon = Beacon(hub, shared.signals, instance=instance)
    calls = CallDesk(
        shared.calls,
        reach,
        beacon,
        shared.presence,
        pipeline,
        hub,
        config=config.calls,
        clock=clock,
        claim_ttl_s=settings.presence_refresh_s * 3,
        open_direct=config.chat.dm_policy == "anyone",
    )
    signals = Signals(
        indicators=Indicators(
            reach,
            beacon,
            interval_s=settings.typing_interval_s,
            per_user=shared.limiters.limiter(
                "typing-user", limit=settings.typing_per_user, window_s=settings.typing_window_s
            ),
        ),
        presence=PresenceDesk(
            shared.presence,
            reach,
            beacon,
            hub,
            instance=instance,
            clock=clock,
            batch_s=settings.presence_batch_ms / 1000,
            refresh_s=settings.presence_refresh_s,
            on_gone=calls.left,
        ),
        calls=calls,
    )
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
    shared: SharedState,
    reach: ReachStore | None,
    hub: Outlets,
    pipeline: Pipeline,
    instance: str,
    clock: Clock,
    task_status: trio.TaskStatus[Signals] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the signals inside ``scope`` (cancelled at shutdown); started with them."""
    if reach is None:  # pragma: no cover - both database backends provide it
        raise RuntimeError("the store backend has no ReachStore")
    with scope:
        async with open_signals(
            config,
            shared=shared,
            reach=reach,
            hub=hub,
            pipeline=pipeline,
            instance=instance,
            clock=clock,
        ) as signals:
            task_status.started(signals)
            await trio.sleep_forever()
