"""Presence: who of a user's friends is online, away or busy, and when others were last seen.

- A connection counts the user online from its HELLO. It receives presence
  once it subscribes with PRESENCE_SET: the reply holds every friend the
  book knows of (online ones with their state, offline ones with
  ``last_seen``); PRESENCE pushes with changes follow. (Opt-in: bots and
  devices that show no presence cost nothing.)
- A change is computed once, atomically, by the presence book (a user is
  online while any device is, and ``invisible`` looks offline), and sent by
  the beacon to the user's friends only — never to everyone — on every
  instance. Each instance keeps the changes for its connected recipients and
  flushes them every ``presence_batch_ms`` as one PRESENCE push per recipient
  device: a burst of changes costs each recipient one frame.
- Nothing touches the database but the friend list of the user who changed
  (one indexed read per change). The book lives in memory or Redis; this
  instance refreshes its devices there every ``presence_refresh_s`` so that
  a crashed instance's devices expire.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

import trio

from sandcat.clock import Clock
from sandcat.errors import StoreUnavailable
from sandcat.gateway.beacon import Beacon, Outlets
from sandcat.protocol import Ok, Presence, PresenceSet, encode
from sandcat.store.presence import PresenceBook, Seen
from sandcat.store.reach import ReachStore

log = logging.getLogger(__name__)


class Device(Protocol):
    @property
    def user(self) -> str: ...
    @property
    def device(self) -> str: ...
    def push(self, data: bytes) -> None: ...


class PresenceDesk:
    def __init__(
        self,
        book: PresenceBook,
        reach: ReachStore,
        beacon: Beacon,
        hub: Outlets,
        *,
        instance: str,
        clock: Clock,
        batch_s: float,
        refresh_s: float,
        on_gone: Callable[[str, str], None] | None = None,
    ) -> None:
        self._book = book
        self._reach = reach
        self._beacon = beacon
        self._hub = hub
        self._instance = instance
        self._clock = clock
        self._batch_s = batch_s
        self._refresh_s = refresh_s
        #: Devices connected here, for the refresh (a device's newest connection).
        self._devices: dict[tuple[str, str], Device] = {}
        #: Connections that closed, waiting for the book (at most one per connection).
        self._left: deque[Device] = deque()
        self._leaving = trio.Event()
        #: Connections that sent PRESENCE_SET: user -> device -> connection.
        self._watching: dict[str, dict[str, Device]] = {}
        #: recipient -> subject -> entry, flushed every batch.
        self._pending: dict[str, dict[str, dict[str, object]]] = {}
        #: Told of every device that went away here, once the book has it (calls).
        self._on_gone = on_gone
        #: PRESENCE pushes the flusher sent (statistics).
        self.flushed = 0
        beacon.on_presence = self.deliver

    @property
    def _ttl_ms(self) -> int:
        return int(self._refresh_s * 3000)

    async def connected(self, conn: Device) -> None:
        """A device said HELLO: count it online (and tell friends if the user just came)."""
        self._devices[conn.user, conn.device] = conn
        try:
            seen = await self._book.connect(
                conn.user,
                conn.device,
                instance=self._instance,
                now_ms=self._clock(),
                ttl_ms=self._ttl_ms,
            )
            if seen is not None:
                await self._announce(conn.user, seen)
        except StoreUnavailable as exc:
            # Presence is best effort: the session goes on; the refresh retries.
            log.warning("presence: %s's connect not recorded: %s", conn.user, exc.message)

    def left(self, conn: Device) -> None:
        """A connection closed (called from the hub; never blocks)."""
        self._left.append(conn)
        self._leaving.set()

    async def choose(self, conn: Device, frame: PresenceSet) -> None:
        """Subscribe the connection; apply a chosen state; answer with the snapshot."""
        now = self._clock()
        if frame.state is not None:
            seen = await self._book.choose(conn.user, frame.state, now_ms=now)
            if seen is not None:
                await self._announce(conn.user, seen)
        self._watching.setdefault(conn.user, {})[conn.device] = conn
        friends = await self._reach.friends(conn.user)
        known = await self._book.appearances([conn.user, *friends], now_ms=now)
        mine = known.pop(conn.user, Seen("online"))
        # Connected, so offline can only mean invisible.
        state = "invisible" if mine.state == "offline" else mine.state
        users = [seen.entry(friend) for friend, seen in known.items()]
        conn.push(encode(Ok(rid=frame.rid, body={"state": state, "users": users})))

    async def _announce(self, user: str, seen: Seen) -> None:
        self._beacon.presence(user, seen, await self._reach.friends(user))

    def deliver(self, subject: str, seen: Seen, recipients: list[str]) -> None:
        """Keep a change for the recipients watching here (the beacon's sink)."""
        entry = seen.entry(subject)
        for user in recipients:
            if user in self._watching:
                self._pending.setdefault(user, {})[subject] = entry

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_every_batch)
            nursery.start_soon(self._refresh_every_period)
            nursery.start_soon(self._take_leavers)
            task_status.started()

    async def _flush_every_batch(self) -> None:
        while True:
            await trio.sleep(self._batch_s)
            pending, self._pending = self._pending, {}
            for user, entries in pending.items():
                frame = encode(Presence(users=tuple(entries.values())))
                for conn in self._watching.get(user, {}).values():
                    conn.push(frame)
                    self.flushed += 1

    async def _refresh_every_period(self) -> None:
        while True:
            await trio.sleep(self._refresh_s)
            try:
                for user, device in list(self._devices):
                    seen = await self._book.connect(
                        user,
                        device,
                        instance=self._instance,
                        now_ms=self._clock(),
                        ttl_ms=self._ttl_ms,
                    )
                    if seen is not None:  # it had expired (the book was unreachable)
                        await self._announce(user, seen)
            except StoreUnavailable as exc:
                # The rest waits for the next period; one line per failed round.
                log.warning("presence refresh stopped for this period: %s", exc.message)

    async def _take_leavers(self) -> None:
        while True:
            await self._leaving.wait()
            self._leaving = trio.Event()
            while self._left:
                conn = self._left.popleft()
                try:
                    await self._leave(conn)
                except StoreUnavailable as exc:
                    log.warning(
                        "presence: %s's disconnect not recorded: %s", conn.user, exc.message
                    )

    async def _leave(self, conn: Device) -> None:
        key = (conn.user, conn.device)
        if self._devices.get(key) is conn:
            del self._devices[key]
        watching = self._watching.get(conn.user, {})
        if watching.get(conn.device) is conn:
            del watching[conn.device]
            if not watching:
                del self._watching[conn.user]
        # A newer connection of the same device (here) keeps it online.
        if any(other.device == conn.device for other in self._hub.outlets(conn.user)):
            return
        try:
            seen = await self._book.disconnect(
                conn.user, conn.device, instance=self._instance, now_ms=self._clock()
            )
            if seen is not None:
                await self._announce(conn.user, seen)
        finally:
            # After the book knows: whoever asks it next sees the device gone.
            if self._on_gone is not None:
                self._on_gone(conn.user, conn.device)
