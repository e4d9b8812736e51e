"""The transactional outbox (README.md, "Run a cluster"): events waiting for the publisher.

In cluster mode the persister writes one outbox row per new message in the
message's own transaction, owned by its instance. That instance's publisher
relays its rows to the bus and removes them once the bus confirms, so an
event reaches the bus at least once for every committed message, whatever
crashes in between. Each publisher heartbeats; rows of an instance whose
heartbeat is older than the lease are taken over by a live one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    cid: str
    #: The encoded event (``sandcat.bus.encode_event``).
    payload: bytes


class OutboxStore(Protocol):
    async def heartbeat(self, instance: str) -> None:
        """Record that ``instance`` is alive now (database time)."""
        ...

    async def take_over(self, instance: str, *, lease_s: float) -> int:
        """Give ``instance`` the rows of every instance not seen for ``lease_s``; how many."""
        ...

    async def pending(self, instance: str, *, limit: int) -> list[OutboxRow]:
        """The oldest rows ``instance`` owns, in commit order per conversation."""
        ...

    async def remove(self, ids: Sequence[int]) -> None:
        """Delete rows the bus has confirmed."""
        ...

    async def retire(self, instance: str) -> None:
        """``instance`` stops: any row it still owns may be taken over at once."""
        ...

    async def claim_slot(
        self, instance: str, *, count: int, lease_s: float, keep: int | None = None
    ) -> int:
        """Give ``instance`` (alive now) a delivery slot in ``range(count)``: ``keep`` if
        given, else the one ``choose_slot`` picks among the live instances' (atomically)."""
        ...

    async def slots(self, *, lease_s: float) -> dict[str, int]:
        """The delivery slot of every instance heard from within ``lease_s``."""
        ...


def choose_slot(taken: Iterable[int], count: int) -> int:
    """The lowest slot in ``range(count)`` nobody holds; if all are held, the lowest of
    the least shared (two instances on one slot both read its events: correct, dearer)."""
    held = Counter(slot for slot in taken if 0 <= slot < count)
    return min(range(count), key=lambda slot: (held[slot], slot))


class OutboxSignal:
    """Wakes the publisher when the persister has committed outbox rows."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> None:
        """Return once set (or after ``timeout_s``), and re-arm."""
        with trio.move_on_after(timeout_s):
            await self._event.wait()
        if self._event.is_set():
            self._event = trio.Event()


@dataclass(frozen=True, slots=True)
class Outbox:
    """The outbox of this instance: where its rows live, who owns them, what wakes it."""

    store: OutboxStore
    owner: str
    signal: OutboxSignal
