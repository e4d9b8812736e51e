"""The bench scenarios: connect, direct, fanout, catchup and http.

Each one sets up what it needs over the HTTP API (not measured), pins the
server and the load generator to a core each where the machine allows, runs
the measured phase, and returns a ``Result`` with every number it has.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import trio

from bench.load import ERR, MSG, OK, Peer, Plan, Samples, hello, run_workers
from bench.population import Member, Population
from bench.report import Result, Timeline
from bench.server import Target, machine, pin, unpin
from bench.wire import Link, LinkClosed, pack, unpack

PULL, SYNC = 11, 12
T = TypeVar("T")
#: PULL's largest page (protocol/SPEC.md §4.7).
_PAGE = 200


@dataclass
class Context:
    target: Target
    http: httpx.AsyncClient
    #: Pin server and load generator to one core each (when the machine allows).
    pin: bool = True
    #: A second instance of the same cluster: direct's receivers connect there.
    peer: Target | None = None

    def population(self) -> Population:
        return Population(self.http)

    def pin_server(self) -> bool:
        if not self.pin or self.target.pid is None:
            return False
        return pin(self.target.pid, 0)

    def pin_loadgen(self) -> Callable[[int], None] | None:
        if not self.pin or self.target.pid is None:
            return None

        def pin_loadgen(pid: int) -> None:
            pin(pid, 1)

        return pin_loadgen

    def unpin(self) -> None:
        if self.target.pid is not None:
            unpin(self.target.pid)

    async def result(self, scenario: str, params: dict[str, object]) -> Result:
        result = Result(scenario, params, config=self.target.config, machine=machine())
        result.machine["pinned"] = self.pin_server()
        result.metrics["before"] = _brief_metrics(await self.target.metrics())
        return result

    async def finish(self, result: Result) -> Result:
        result.metrics["after"] = _brief_metrics(await self.target.metrics())
        self.unpin()
        return result


def _brief_metrics(values: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in values.items() if "_bucket" not in name}


class CpuMeter:
    """The server's CPU seconds over the measured phase (when it is a local process)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._start = target.cpu_seconds()
        self._wall = time.perf_counter()

    def numbers(self, units: int, unit: str) -> dict[str, float]:
        end = self._target.cpu_seconds()
        if end is None or self._start is None:
            return {}
        cpu = end - self._start
        wall = time.perf_counter() - self._wall
        numbers = {"server_cpu_s": round(cpu, 3), "server_cpu_share": round(cpu / wall, 3)}
        if units:
            numbers[f"server_cpu_us_per_{unit}"] = round(cpu / units * 1e6, 2)
        return numbers


def _split(items: list[T], parts: int) -> list[list[T]]:
    return [items[index::parts] for index in range(parts)]


def _message_numbers(samples: Samples, elapsed_s: float, fanout: int) -> dict[str, object]:
    expected = {
        (sender, n) for sender, ids in samples.acked_ids.items() for n in ids
    }  # acked messages
    delivered_ok = sum(1 for key in expected if samples.per_message.get(key, (0, 0.0))[0] > 0)
    full = sum(1 for key in expected if samples.per_message.get(key, (0, 0.0))[0] >= fanout)
    lost = sum(fanout - min(samples.per_message.get(key, (0, 0.0))[0], fanout) for key in expected)
    return {
        "elapsed_s": round(elapsed_s, 3),
        "sent": samples.sent,
        "acked": samples.acked,
        "refused": samples.refused,
        "unacked": samples.sent - samples.acked - samples.refused,
        "delivered": samples.delivered,
        "messages_delivered_somewhere": delivered_ok,
        "messages_delivered_to_all": full,
        "lost": lost,
        "duplicates": samples.duplicates,
        "acked_per_s": round(samples.acked / elapsed_s, 1) if elapsed_s else 0.0,
        "deliveries_per_s": round(samples.delivered / elapsed_s, 1) if elapsed_s else 0.0,
        "errors": samples.errors[:20],
    }


async def _measure(ctx: Context, plans: list[Plan]) -> tuple[Samples, CpuMeter]:
    meter = CpuMeter(ctx.target)
    samples = await trio.to_thread.run_sync(run_workers, plans, ctx.pin_loadgen())
    return samples, meter


async def direct(
    ctx: Context,
    *,
    pairs: int = 1,
    window: int = 256,
    rate: float = 0.0,
    duration_s: float = 10.0,
    workers: int = 1,
    body_bytes: int = 0,
) -> Result:
    """P sender -> receiver pairs; max rate with W unacked, or ``rate`` msgs/s in total."""
    people = await ctx.population().members(2 * pairs)
    couples = [(people[2 * i], people[2 * i + 1]) for i in range(pairs)]
    cids = await ctx.population().befriend_all(couples)
    params: dict[str, object] = {
        "pairs": pairs,
        "window": window,
        "rate": rate,
        "duration_s": duration_s,
        "workers": workers,
        "body_bytes": body_bytes,
    }
    result = await ctx.result("direct", params)
    indexed = list(enumerate(zip(couples, cids, strict=True)))
    plans = []
    for share in _split(indexed, max(1, min(workers, pairs))):
        plans.append(
            Plan(
                host=ctx.target.host,
                port=ctx.target.ws_port,
                senders=[(i, Peer(a.token, "s"), cid) for i, ((a, _), cid) in share],
                receivers=[Peer(b.token, "r") for _, ((_, b), _) in share],
                window=window,
                rate=rate / pairs if rate else 0.0,
                duration_s=duration_s,
                fanout=1,
                body_bytes=body_bytes,
                receiver_port=ctx.peer.ws_port if ctx.peer is not None else 0,
            )
        )
    samples, meter = await _measure(ctx, plans)
    elapsed = max(samples.last_event - samples.first_send, 1e-9)
    result.numbers = _message_numbers(samples, elapsed, 1)
    result.numbers.update(meter.numbers(samples.acked, "message"))
    result.latencies = {"send_to_ack": samples.ack_s, "send_to_delivery": samples.delivery_s}
    result.timelines = samples.timelines
    return await ctx.finish(result)


async def fanout(
    ctx: Context,
    *,
    members: int = 100,
    senders: int = 1,
    window: int = 8,
    rate: float = 0.0,
    duration_s: float = 10.0,
    workers: int = 1,
) -> Result:
    """One group of ``members``, all online; ``senders`` of them send into it."""
    people = await ctx.population().members(members)
    cid = await ctx.population().group(people[0], people[1:])
    params: dict[str, object] = {
        "members": members,
        "senders": senders,
        "window": window,
        "rate": rate,
        "duration_s": duration_s,
        "workers": workers,
    }
    result = await ctx.result("fanout", params)
    talkers = list(enumerate(people[:senders]))
    listeners = people[senders:]
    parts = max(1, workers)
    plans = [
        Plan(
            host=ctx.target.host,
            port=ctx.target.ws_port,
            senders=[(i, Peer(m.token, "s"), cid) for i, m in share],
            receivers=[Peer(m.token, "r") for m in listen],
            window=window,
            rate=rate / senders if rate else 0.0,
            duration_s=duration_s,
            fanout=members - 1,
        )
        for share, listen in zip(
            _split(talkers, parts),
            _split(listeners, parts),
            strict=True,
        )
    ]
    samples, meter = await _measure(ctx, plans)
    elapsed = max(samples.last_event - samples.first_send, 1e-9)
    result.numbers = _message_numbers(samples, elapsed, members - 1)
    result.numbers.update(meter.numbers(samples.delivered, "delivery"))
    last = [latest for count, latest in samples.per_message.values() if count >= members - 1]
    result.latencies = {
        "send_to_ack": samples.ack_s,
        "send_to_delivery": samples.delivery_s,
        "send_to_last_member": last,
    }
    result.timelines = samples.timelines
    return await ctx.finish(result)


async def catchup(
    ctx: Context, *, messages: int = 20000, conversations: int = 10, window: int = 256
) -> Result:
    """A user offline while N messages arrive over K conversations; then SYNC + PULL all."""
    people = await ctx.population().members(conversations + 1)
    reader, writers = people[0], people[1:]
    await ctx.population().befriend_all([(w, reader) for w in writers])
    params: dict[str, object] = {
        "messages": messages,
        "conversations": conversations,
        "window": window,
    }
    per_writer = math.ceil(messages / conversations)
    await _fill(ctx, writers, reader, per_writer, window)
    result = await ctx.result("catchup", params)
    meter = CpuMeter(ctx.target)
    started = time.perf_counter()
    timeline = Timeline(started)
    link = await hello(ctx.target.host, ctx.target.ws_port, Peer(reader.token, "catchup"))
    pulled, pages, page_s = await _pull_everything(link, timeline)
    elapsed = time.perf_counter() - started
    await link.close()
    result.numbers = {
        "expected": per_writer * conversations,
        "pulled": pulled,
        "lost": per_writer * conversations - pulled,
        "pages": pages,
        "elapsed_s": round(elapsed, 3),
        "messages_per_s": round(pulled / elapsed, 1),
        **meter.numbers(pulled, "message"),
    }
    result.latencies = {"pull_page": page_s}
    result.timelines = {"pulled": timeline}
    return await ctx.finish(result)


async def _fill(
    ctx: Context, writers: list[Member], reader: Member, per_writer: int, window: int
) -> None:
    """Each writer sends ``per_writer`` messages to ``reader`` (who is offline)."""

    async def write(writer: Member) -> None:
        link = await hello(ctx.target.host, ctx.target.ws_port, Peer(writer.token, "fill"))
        cid = "d:" + ":".join(sorted((writer.id, reader.id)))
        sent = acked = 0
        while acked < per_writer:
            frames = []
            while sent < per_writer and sent - acked < window:
                sent += 1
                frames.append(
                    pack(
                        [
                            10,
                            sent,
                            {"cid": cid, "cmid": f"f{sent}", "kind": 1, "body": {"text": "x" * 40}},
                        ]
                    )
                )
            if frames:
                await link.send(b"".join(frames))
            for payload in await link.receive():
                op, _, body = unpack(payload)
                if op == ERR:
                    raise RuntimeError(f"fill refused: {body}")
                acked += op == OK
        await link.close()

    async with trio.open_nursery() as nursery:
        for writer in writers:
            nursery.start_soon(write, writer)


async def _pull_everything(link: Link, timeline: Timeline) -> tuple[int, int, list[float]]:
    await link.send(pack([SYNC, 1, {}]))
    convs: list[dict[str, object]] = []
    while not convs:
        for payload in await link.receive():
            op, rid, body = unpack(payload)
            if op == OK and rid == 1:
                convs = body["convs"]  # type: ignore[assignment]
    # Every conversation's next page is requested as soon as its previous one
    # arrives: one PULL in flight per conversation.
    asked: dict[int, tuple[str, float]] = {}
    rid = 1
    requests = []
    for conv in convs:
        rid += 1
        asked[rid] = (str(conv["cid"]), time.perf_counter())
        requests.append(pack([PULL, rid, {"cid": conv["cid"], "after": 0, "limit": _PAGE}]))
    await link.send(b"".join(requests))
    pulled = pages = 0
    page_s: list[float] = []
    while asked:
        follow = []
        for payload in await link.receive():
            op, reply_to, body = unpack(payload)
            if op == MSG or reply_to not in asked:
                continue
            cid, at = asked.pop(reply_to)
            now = time.perf_counter()
            if op != OK:
                raise RuntimeError(f"PULL refused: {body}")
            msgs: list[dict[str, object]] = body["msgs"]  # type: ignore[assignment]
            pulled += len(msgs)
            pages += 1
            page_s.append(now - at)
            timeline.add(now, len(msgs))
            if body["more"]:
                rid += 1
                asked[rid] = (cid, now)
                follow.append(
                    pack([PULL, rid, {"cid": cid, "after": msgs[-1]["seq"], "limit": _PAGE}])
                )
        if follow:
            await link.send(b"".join(follow))
    return pulled, pages, page_s


async def connect(
    ctx: Context, *, connections: int = 1000, ramp_per_s: float = 0.0, hold_s: float = 3.0
) -> Result:
    """Open C authenticated idle connections; connect rate, failures, server RSS each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    users = await ctx.population().members(max(1, min(10, connections)))
    params: dict[str, object] = {
        "connections": connections,
        "ramp_per_s": ramp_per_s,
        "hold_s": hold_s,
    }
    result = await ctx.result("connect", params)
    if ctx.pin:
        pin(0, 1)
    await trio.sleep(0.5)
    rss_before = ctx.target.rss_bytes()
    meter = CpuMeter(ctx.target)
    links: list[Link] = []
    failures: list[str] = []
    connect_s: list[float] = []
    started = time.perf_counter()
    timeline = Timeline(started)
    limiter = trio.CapacityLimiter(64)

    async def one(index: int) -> None:
        async with limiter:
            user = users[index % len(users)]
            at = time.perf_counter()
            try:
                link = await hello(
                    ctx.target.host, ctx.target.ws_port, Peer(user.token, f"i{index}")
                )
            except (LinkClosed, OSError, trio.TooSlowError) as exc:
                failures.append(str(exc))
                return
            now = time.perf_counter()
            connect_s.append(now - at)
            timeline.add(now)
            links.append(link)

    async with trio.open_nursery() as nursery:
        for index in range(connections):
            if ramp_per_s:
                await trio.sleep_until(started + index / ramp_per_s)
            nursery.start_soon(one, index)
    ramp_s = time.perf_counter() - started

    async def idle(link: Link) -> None:
        try:
            while True:
                await link.receive()
        except LinkClosed as exc:
            failures.append(f"dropped while idle: {exc}")

    async with trio.open_nursery() as nursery:
        for link in links:
            nursery.start_soon(idle, link)
        await trio.sleep(hold_s)
        rss_after = ctx.target.rss_bytes()
        metrics = await ctx.target.metrics()
        nursery.cancel_scope.cancel()
    for link in links:
        await link.close()
    if ctx.pin:
        unpin(0)
    result.numbers = {
        "connected": len(links),
        "failures": len(failures),
        "failure_samples": failures[:10],
        "ramp_s": round(ramp_s, 3),
        "connects_per_s": round(len(links) / ramp_s, 1),
        "server_connections": metrics.get("sandcat_connections", -1.0),
        **meter.numbers(len(links), "connect"),
    }
    if rss_before is not None and rss_after is not None and links:
        result.numbers.update(
            rss_before_bytes=rss_before,
            rss_after_bytes=rss_after,
            rss_per_connection_bytes=round((rss_after - rss_before) / len(links)),
        )
    result.latencies = {"connect_and_hello": connect_s}
    result.timelines = {"connects": timeline}
    return await ctx.finish(result)


async def http(ctx: Context, *, duration_s: float = 3.0, concurrency: int = 8) -> Result:
    """Requests/s and latency of login, profile and friend-list requests, one at a time each."""
    people = await ctx.population().members(2)
    await ctx.population().befriend(people[0], people[1])
    user = people[0]
    params: dict[str, object] = {"duration_s": duration_s, "concurrency": concurrency}
    result = await ctx.result("http", params)
    headers = {"Authorization": f"Bearer {user.token}"}
    base = ctx.target.http_url
    login_body = {"login": user.username, "password": "bench password 1", "device": "h"}

    async def login(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(f"{base}/api/v1/auth/login", json=login_body)

    async def profile(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(f"{base}/api/v1/users/me", headers=headers)

    async def friends(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(f"{base}/api/v1/friends", headers=headers)

    requests: dict[str, Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]] = {
        "login": login,
        "profile": profile,
        "friends": friends,
    }
    meter = CpuMeter(ctx.target)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for name, request in requests.items():
            latencies: list[float] = []
            failures = 0
            started = time.perf_counter()
            end = started + duration_s
            timeline = Timeline(started)

            async def worker(
                request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]] = request,
                latencies: list[float] = latencies,
                timeline: Timeline = timeline,
                end: float = end,
            ) -> None:
                nonlocal failures
                while time.perf_counter() < end:
                    at = time.perf_counter()
                    reply = await request(client)
                    now = time.perf_counter()
                    if reply.status_code >= 300:
                        failures += 1
                        continue
                    latencies.append(now - at)
                    timeline.add(now)

            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
            elapsed = time.perf_counter() - started
            result.numbers[f"{name}_per_s"] = round(len(latencies) / elapsed, 1)
            result.numbers[f"{name}_failures"] = failures
            result.latencies[name] = latencies
            result.timelines[name] = timeline
    result.numbers.update(meter.numbers(0, "request"))
    result.numbers["note"] = (
        "history over HTTP is not an API route yet; PULL is measured by catchup"
    )
    return await ctx.finish(result)


SCENARIOS: dict[str, Callable[..., Awaitable[Result]]] = {
    "connect": connect,
    "direct": direct,
    "fanout": fanout,
    "catchup": catchup,
    "http": http,
}
