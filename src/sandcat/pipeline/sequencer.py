"""The sequencer: cuts the stream of sends into batches for group commit.

Sends arrive from every connection reader over one bounded channel. While
the persister commits one batch, the next accumulates in that channel; the
sequencer takes everything queued (up to ``max_batch``) as the next batch, so
batches grow exactly as fast as the store needs them to. Resends that were
acked recently are answered here without touching the store (G2 fast path).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import trio

from sandcat.clock import Clock, system_clock
from sandcat.pipeline.outlet import Outlet
from sandcat.protocol import encode_ack
from sandcat.store.messages import Appended, NewMessage, Refused

AckKey = tuple[str, str, str]


class Ack(NamedTuple):
    """What a SEND was acked with. A tuple of atoms, so the garbage collector stops
    tracking it: the LRU below holds tens of thousands, which a full collection
    would otherwise walk every time (tail latency)."""

    cid: str
    seq: int
    mid: str
    ts: int

    def frame(self, rid: int) -> bytes:
        return encode_ack(rid, self.cid, self.seq, self.mid, self.ts)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One SEND on its way through the pipeline."""

    message: NewMessage
    #: The decoded body, pushed as is so it is not decoded again from storage.
    body: object
    #: The connection that sent it, for the ack; the request id to ack.
    origin: Outlet
    rid: int
    #: When the reader handed it over (``time.perf_counter()``), for the latency metrics.
    received: float = 0.0
    #: Told the outcome once the router has it (``Pipeline.commit``'s internal writers).
    settle: Callable[[Appended | Refused], None] | None = None


class RecentAcks:
    """A bounded LRU of acks by ``(sender, cid, cmid)``, each kept at most
    ``ttl_s`` after its last use (0: no time bound).

    The fast path is for a resend soon after a lost ack (a reconnect); an older
    resend is answered by the store's dedupe. Without the time bound the LRU
    only ever fills: at a few sends a second its 65,536 acks (~300 bytes each)
    took the soak's whole hour to fill, ~20 MiB of resident size that looked
    like a leak (bench/RESULTS.md, "Soak"); with it the LRU holds what
    ``ttl_s`` of traffic sends, whatever the uptime."""

    def __init__(self, capacity: int, *, ttl_s: float = 0.0, clock: Clock = system_clock) -> None:
        self._capacity = capacity
        self._ttl_ms = round(ttl_s * 1000)
        self._clock = clock
        #: Each ack with when it was put or last used (clock ms), oldest first.
        self._acks: OrderedDict[AckKey, tuple[int, Ack]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._acks)

    def get(self, key: AckKey) -> Ack | None:
        entry = self._acks.get(key)
        if entry is None:
            return None
        now = self._clock()
        if self._ttl_ms and now - entry[0] > self._ttl_ms:
            del self._acks[key]
            return None
        # A resend is used again: keep it (LRU, not FIFO).
        self._acks[key] = (now, entry[1])
        self._acks.move_to_end(key)
        return entry[1]

    def put(self, key: AckKey, ack: Ack) -> None:
        if self._capacity == 0:
            return
        now = self._clock()
        self._acks[key] = (now, ack)
        self._acks.move_to_end(key)
        while len(self._acks) > self._capacity:
            self._acks.popitem(last=False)
        if self._ttl_ms:
            for old in self._expired(now):
                del self._acks[old]

    def _expired(self, now: int) -> list[AckKey]:
        """The keys unused for over ``ttl_s``: the oldest, at the front."""
        expired = []
        for key, (used, _) in self._acks.items():
            if now - used <= self._ttl_ms:
                break
            expired.append(key)
        return expired


async def run_sequencer(
    sends: trio.MemoryReceiveChannel[SendRequest],
    batches: trio.MemorySendChannel[list[SendRequest]],
    recent: RecentAcks,
    *,
    max_batch: int,
    window_s: float,
) -> None:
    """Batch sends until ``sends`` is closed and drained, then close ``batches``."""
    async with sends, batches:
        async for first in sends:
            batch: list[SendRequest] = []
            _admit(first, batch, recent)
            deadline = trio.current_time() + window_s
            while len(batch) < max_batch:
                request = await _next(sends, deadline)
                if request is None:
                    break
                _admit(request, batch, recent)
            if batch:
                await batches.send(batch)


async def _next(
    sends: trio.MemoryReceiveChannel[SendRequest], deadline: float
) -> SendRequest | None:
    """The next queued send, waiting until ``deadline`` at most; None if none came."""
    try:
        return sends.receive_nowait()
    except trio.WouldBlock:
        pass
    except trio.EndOfChannel:
        return None
    with trio.move_on_at(deadline):
        try:
            return await sends.receive()
        except trio.EndOfChannel:
            return None
    return None


def _admit(request: SendRequest, batch: list[SendRequest], recent: RecentAcks) -> None:
    message = request.message
    ack = recent.get((message.sender, message.cid, message.cmid))
    if ack is None or request.settle is not None:
        # ``Pipeline.commit`` wants what was stored: the store answers its resends.
        batch.append(request)
    else:
        request.origin.push(ack.frame(request.rid))
