"""The measured phase of the messaging scenarios, run in one or more worker processes.

A worker gets plain data (tokens, cids, parameters) and returns plain data
(samples and counts), so the same code runs in this process or in a forked
child. Every message carries its sender's number, its own number and the
time it was sent (``time.perf_counter``, CLOCK_MONOTONIC: the same clock in
every process of the machine), so a receiver knows its latency and can count
duplicates and holes without asking anyone.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from bench.report import Timeline
from bench.wire import Link, LinkClosed, pack, unpack

OK, ERR, MSG = 2, 3, 20
SEND = 10
#: How long a worker waits for acks and deliveries after the last send.
DRAIN_S = 15.0
#: Sends written per system call at most (one burst of a window).
_BURST = 64


@dataclass
class Peer:
    """One client connection to open: whose token, which device, where.

    ``port`` 0 is the plan's (``Plan.port`` for senders, ``Plan.receiver_port``
    or ``Plan.port`` for receivers); ``cross`` marks a receiver whose messages
    come from senders on another instance (its latencies are counted apart).
    """

    token: str
    device: str
    port: int = 0
    cross: bool = False


@dataclass
class Samples:
    """What a worker measured; merged across workers by ``merge``."""

    ack_s: list[float] = field(default_factory=list)
    delivery_s: list[float] = field(default_factory=list)
    #: ``delivery_s`` split by where the receiver is: the sender's instance or another.
    delivery_same_s: list[float] = field(default_factory=list)
    delivery_cross_s: list[float] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    refused: int = 0
    delivered: int = 0
    duplicates: int = 0
    #: (sender, n) -> (deliveries seen, latest delivery latency in s)
    per_message: dict[tuple[int, int], tuple[int, float]] = field(default_factory=dict)
    #: sender -> numbers that were acked
    acked_ids: dict[int, list[int]] = field(default_factory=dict)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    first_send: float = 0.0
    last_event: float = 0.0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Samples) -> None:
        self.ack_s += other.ack_s
        self.delivery_s += other.delivery_s
        self.delivery_same_s += other.delivery_same_s
        self.delivery_cross_s += other.delivery_cross_s
        self.sent += other.sent
        self.acked += other.acked
        self.refused += other.refused
        self.delivered += other.delivered
        self.duplicates += other.duplicates
        for key, (count, latest) in other.per_message.items():
            mine = self.per_message.get(key)
            self.per_message[key] = (
                (count, latest) if mine is None else (mine[0] + count, max(mine[1], latest))
            )
        for sender, ids in other.acked_ids.items():
            self.acked_ids.setdefault(sender, []).extend(ids)
        for name, timeline in other.timelines.items():
            if name in self.timelines:
                self.timelines[name].merge(timeline)
            else:
                self.timelines[name] = timeline
        starts = [s for s in (self.first_send, other.first_send) if s]
        self.first_send = min(starts) if starts else 0.0
        self.last_event = max(self.last_event, other.last_event)
        self.errors += other.errors


async def hello(host: str, port: int, peer: Peer) -> Link:
    """Open a link and authenticate it; raises ``LinkClosed`` if refused."""
    link = await Link.open(host, port)
    await link.send(pack([1, 1, {"token": peer.token, "device": peer.device, "platform": "bench"}]))
    with trio.fail_after(30):
        payloads = await link.receive()
    op, _, body = unpack(payloads[0])
    if op != OK:
        raise LinkClosed(-1, f"HELLO refused: {body}")
    return link


@dataclass
class Plan:
    """One worker's share of a messaging scenario."""

    host: str
    port: int
    #: Sending connections: (sender number, peer, cid).
    senders: list[tuple[int, Peer, str]]
    #: Receiving connections (a sender may also receive: group members).
    receivers: list[Peer]
    window: int
    #: Sends per second per sender; 0 for as fast as the window allows.
    rate: float
    duration_s: float
    #: Deliveries each message should get (receivers per message).
    fanout: int
    body_bytes: int = 0
    #: The WebSocket port receivers connect to (another instance); 0: ``port``.
    receiver_port: int = 0


class _Sender:
    def __init__(self, number: int, link: Link, cid: str, plan: Plan, samples: Samples) -> None:
        self.number = number
        self.link = link
        self.cid = cid
        self.plan = plan
        self.samples = samples
        self.pending: dict[int, tuple[int, float]] = {}
        self.window = trio.Semaphore(plan.window)
        self.done_sending = False
        self.all_acked = trio.Event()
        self.acked: list[int] = []
        self.pad = "x" * plan.body_bytes

    def frame(self, n: int, at: float) -> bytes:
        rid = n + 1
        self.pending[rid] = (n, at)
        text = f"{self.number}:{n}:{at!r}:{self.pad}"
        return pack(
            [SEND, rid, {"cid": self.cid, "cmid": f"c{n}", "kind": 1, "body": {"text": text}}]
        )

    async def pump(self, end: float) -> None:
        n = 0
        plan = self.plan
        interval = 1 / plan.rate if plan.rate else 0.0
        start = time.perf_counter()
        if not self.samples.first_send:
            self.samples.first_send = start
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if interval:
                due = start + n * interval
                if due > now:
                    await trio.sleep(due - now)
                    continue
                # Latency counts from when the send was due, not when it went out:
                # a stalled generator must not hide server stalls (coordinated omission).
                count = min(int((now - due) / interval) + 1, _BURST)
                frames: list[bytes] = []
                for _ in range(count):
                    # Wait for the window only with nothing in hand: frames held
                    # back while waiting would never be acked (a deadlock once the
                    # generator falls more than a window behind).
                    if frames:
                        try:
                            self.window.acquire_nowait()
                        except trio.WouldBlock:
                            break
                    else:
                        await self.window.acquire()
                    frames.append(self.frame(n, start + n * interval))
                    n += 1
            else:
                await self.window.acquire()
                frames = [self.frame(n, now)]
                n += 1
                while len(frames) < _BURST:
                    try:
                        self.window.acquire_nowait()
                    except trio.WouldBlock:
                        break
                    frames.append(self.frame(n, now))
                    n += 1
            await self.link.send(b"".join(frames))
            self.samples.sent += len(frames)
        self.done_sending = True
        if not self.pending:
            self.all_acked.set()

    def on_reply(self, op: int, rid: int, now: float) -> None:
        entry = self.pending.pop(rid, None)
        if entry is None:
            return
        n, at = entry
        self.window.release()
        if op == OK:
            self.samples.acked += 1
            self.samples.ack_s.append(now - at)
            self.acked.append(n)
            self.samples.timelines["acks"].add(now)
        else:
            self.samples.refused += 1
        if self.done_sending and not self.pending:
            self.all_acked.set()


async def _read(
    link: Link,
    sender: _Sender | None,
    samples: Samples,
    seen: dict[tuple[int, int], int],
    cross: bool = False,
) -> None:
    deliveries = samples.timelines["deliveries"]
    split = samples.delivery_cross_s if cross else samples.delivery_same_s
    try:
        while True:
            payloads = await link.receive()
            now = time.perf_counter()
            for payload in payloads:
                op, rid, body = unpack(payload)
                if op == MSG:
                    content: dict[str, str] = body["body"]  # type: ignore[assignment]
                    number, n, at, _ = content["text"].split(":", 3)
                    key = (int(number), int(n))
                    latency = now - float(at)
                    count = seen.get(key, 0)
                    if count:
                        samples.duplicates += 1
                        continue
                    seen[key] = 1
                    samples.delivered += 1
                    samples.delivery_s.append(latency)
                    split.append(latency)
                    previous = samples.per_message.get(key)
                    samples.per_message[key] = (
                        (1, latency)
                        if previous is None
                        else (previous[0] + 1, max(previous[1], latency))
                    )
                    deliveries.add(now)
                    samples.last_event = now
                elif sender is not None and op in (OK, ERR):
                    sender.on_reply(op, rid, now)
                    samples.last_event = now
    except LinkClosed as exc:
        samples.errors.append(f"link closed: {exc}")


async def run_plan(plan: Plan) -> Samples:
    """Connect everything in ``plan``, send for ``duration_s``, drain, and count."""
    samples = Samples()
    start = time.perf_counter()
    samples.timelines = {"acks": Timeline(start), "deliveries": Timeline(start)}
    async with trio.open_nursery() as nursery:
        senders: list[_Sender] = []
        receivers: list[tuple[Link, dict[tuple[int, int], int], bool]] = []
        for number, peer, cid in plan.senders:
            link = await hello(plan.host, peer.port or plan.port, peer)
            senders.append(_Sender(number, link, cid, plan, samples))
        for peer in plan.receivers:
            port = peer.port or plan.receiver_port or plan.port
            receivers.append((await hello(plan.host, port, peer), {}, peer.cross))
        for sender in senders:
            nursery.start_soon(_read, sender.link, sender, samples, {})
        for link, seen, cross in receivers:
            nursery.start_soon(_read, link, None, samples, seen, cross)
        # The load generator's own full collections would show up as latency.
        gc.collect()
        gc.freeze()
        begin = time.perf_counter()
        for timeline in samples.timelines.values():
            timeline.start = begin
        end = begin + plan.duration_s
        async with trio.open_nursery() as pumps:
            for sender in senders:
                pumps.start_soon(sender.pump, end)
        with trio.move_on_after(DRAIN_S):
            for sender in senders:
                await sender.all_acked.wait()
            expected = plan.fanout * sum(len(s.acked) for s in senders)
            while samples.delivered < expected:  # noqa: ASYNC110 - counted by many readers
                await trio.sleep(0.02)
        for sender in senders:
            samples.acked_ids[sender.number] = sender.acked
        nursery.cancel_scope.cancel()
    gc.unfreeze()
    for sender in senders:
        await sender.link.close()
    for link, _, _ in receivers:
        await link.close()
    return samples


def _child(plan: Plan, conn: Any) -> None:
    conn.send(trio.run(run_plan, plan))
    conn.close()


def run_workers(plans: list[Plan], pin_to: Callable[[int], None] | None = None) -> Samples:
    """Run each plan in its own process (just this one if there is one plan); merged."""
    if len(plans) == 1:
        if pin_to is not None:
            pin_to(0)
        return trio.run(run_plan, plans[0])
    # spawn, not fork: the caller is a Trio program with threads.
    context = multiprocessing.get_context("spawn")
    children = []
    for plan in plans:
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(plan, child_end))
        process.start()
        if pin_to is not None:
            pin_to(process.pid or 0)
        children.append((process, parent_end))
    merged = Samples()
    for process, pipe in children:
        merged.merge(pipe.recv())
        process.join()
    return merged
