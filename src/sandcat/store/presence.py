"""The presence book: which devices of a user are online, the status they chose, last seen.

Kept off the database: in memory for one instance (``MemoryPresenceBook``),
in Redis for a cluster (``sandcat.store.redis.presence``). A user appears
``online``, ``away`` or ``busy`` (their choice) while any device is
connected, and ``offline`` otherwise or while they chose ``invisible``.
``last_seen`` is when they last stopped appearing online (an invisible user's
is when they turned invisible, so it does not give them away).

Each device entry carries the instance that holds its connection and an
expiry: an instance refreshes its devices (``connect`` again) well before
they expire, so a crashed instance's devices drop out on their own, and a
``disconnect`` from an instance that no longer holds the device (it moved)
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: How long a user's chosen status and last-seen are kept after their last change.
KEEP_MS = 30 * 86_400_000


@dataclass(frozen=True, slots=True)
class Seen:
    """How a user appears to others: a state, and last-seen while offline."""

    state: str
    last_seen: int | None = None

    def entry(self, user: str) -> dict[str, object]:
        """The user's entry in a PRESENCE push."""
        entry: dict[str, object] = {"user": user, "state": self.state}
        if self.state == "offline" and self.last_seen is not None:
            entry["last_seen"] = self.last_seen
        return entry


class PresenceBook(Protocol):
    async def connect(
        self, user: str, device: str, *, instance: str, now_ms: int, ttl_ms: int
    ) -> Seen | None:
        """Count ``device`` online (or refresh it) until ``now_ms + ttl_ms``.

        Returns how the user appears now if that changed, else None.
        """
        ...

    async def disconnect(
        self, user: str, device: str, *, instance: str, now_ms: int
    ) -> Seen | None:
        """Count ``device`` offline if ``instance`` holds it; the new appearance if it changed."""
        ...

    async def choose(self, user: str, state: str, *, now_ms: int) -> Seen | None:
        """Set the user's chosen status; the new appearance if it changed."""
        ...

    async def appearances(self, users: Sequence[str], *, now_ms: int) -> dict[str, Seen]:
        """How each of ``users`` the book knows of appears now (unknown users left out)."""
        ...

    async def connected(self, user: str, device: str, *, now_ms: int) -> bool:
        """Whether ``device`` of ``user`` is connected to some instance."""
        ...


def appearance(status: str, live_devices: int, last_seen: int | None) -> Seen:
    """The rule both books apply."""
    if live_devices == 0 or status == "invisible":
        return Seen("offline", last_seen)
    return Seen(status)


@dataclass(slots=True)
class _Person:
    status: str = "online"
    last_seen: int | None = None
    #: device -> (instance, expires at)
    devices: dict[str, tuple[str, int]] = field(default_factory=dict)

    def seen(self, now_ms: int) -> Seen:
        live = sum(1 for _, expires in self.devices.values() if expires > now_ms)
        return appearance(self.status, live, self.last_seen)


class MemoryPresenceBook:
    """The embedded presence book: one process, one dict (a small entry per user seen)."""

    def __init__(self) -> None:
        self._people: dict[str, _Person] = {}

    def _change(self, person: _Person, before: Seen, now_ms: int) -> Seen | None:
        after = person.seen(now_ms)
        if after.state == before.state:
            return None
        if after.state == "offline":
            person.last_seen = now_ms
            after = Seen("offline", now_ms)
        return after

    async def connect(
        self, user: str, device: str, *, instance: str, now_ms: int, ttl_ms: int
    ) -> Seen | None:
        person = self._people.setdefault(user, _Person())
        before = person.seen(now_ms)
        person.devices[device] = (instance, now_ms + ttl_ms)
        return self._change(person, before, now_ms)

    async def disconnect(
        self, user: str, device: str, *, instance: str, now_ms: int
    ) -> Seen | None:
        person = self._people.get(user)
        if person is None:
            return None
        before = person.seen(now_ms)
        held = person.devices.get(device)
        if held is not None and held[0] == instance:
            del person.devices[device]
        return self._change(person, before, now_ms)

    async def choose(self, user: str, state: str, *, now_ms: int) -> Seen | None:
        person = self._people.setdefault(user, _Person())
        before = person.seen(now_ms)
        person.status = state
        return self._change(person, before, now_ms)

    async def appearances(self, users: Sequence[str], *, now_ms: int) -> dict[str, Seen]:
        return {user: self._people[user].seen(now_ms) for user in users if user in self._people}

    async def connected(self, user: str, device: str, *, now_ms: int) -> bool:
        person = self._people.get(user)
        held = None if person is None else person.devices.get(device)
        return held is not None and held[1] > now_ms
