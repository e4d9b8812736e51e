"""The bus interface: publish records durably, subscribe to what is published next.

A record is a key and opaque bytes. The bus keeps the order of records with
the same key (Kafka: one partition per key) and delivers every record to
every subscription at least once; duplicates are the consumer's to drop.

Routing (docs/cluster-routing.md): a record may name a delivery *slot*; it
then reaches only the subscriptions to that slot (Kafka: one partition of
the delivery topic), and a subscription to a slot receives nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from sandcat.errors import Unavailable


class BusUnavailable(Unavailable):
    """The bus did not confirm a publish in time, or cannot be reached."""


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    value: bytes
    #: The delivery slot it is for, or None for the shared stream.
    slot: int | None = None


class Subscription(Protocol):
    async def receive(self) -> list[bytes]:
        """The next records' values (at least one), waiting for them as long as it takes."""
        ...


class Bus(Protocol):
    async def publish(self, records: Sequence[Record]) -> None:
        """Return once the bus holds every record (Kafka: acks from all replicas).

        Raises ``BusUnavailable`` otherwise; some records may have been
        published all the same (publishing again is at least once).
        """
        ...

    def subscribe(self, slot: int | None = None) -> AbstractAsyncContextManager[Subscription]:
        """A subscription to every record published after it is entered (to ``slot``
        only, if given)."""
        ...
