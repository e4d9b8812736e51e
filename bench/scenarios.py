"""The bench scenarios: connect, direct, fanout, catchup and http.

Each one sets up what it needs over the HTTP API (not measured), pins the
server and the load generator to a core each where the machine allows, runs
the measured phase, and returns a ``Result`` with every number it has.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
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
    #: Every instance of a cluster, ``target`` first (empty: ``target`` alone).
    cluster: list[Target] = field(default_factory=list)
    #: Runs beside each measured phase; the latencies it filled are reported as
    #: ``probe`` (the cluster bench's bare PostgreSQL commits).
    probe: Callable[[], AbstractAsyncContextManager[list[float]]] | None = None
    #: Every instance's metrics when the measured phase began.
    _before: list[dict[str, float]] = field(default_factory=list)

    @property
    def instances(self) -> list[Target]:
        return self.cluster or [self.target]

    def ws_port(self, index: int) -> int:
        """The WebSocket port of instance ``index`` (round robin over the cluster)."""
        instances = self.instances
        return instances[index % len(instances)].ws_port

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
        self._before = [await target.metrics() for target in self.instances]
        result.metrics["before"] = _brief_metrics(self._before[0])
        return result

    async def finish(self, result: Result) -> Result:
        after = [await target.metrics() for target in self.instances]
        result.metrics["after"] = _brief_metrics(after[0])
        hops: dict[str, dict[str, float]] = {}
        events: dict[str, dict[str, float]] = {}
        for index, (old, new) in enumerate(zip(self._before, after, strict=True)):
            for name, series in _HOPS.items():
                summary = histogram_delta(old, new, series)
                if summary["count"]:
                    hops[f"i{index}.{name}"] = summary
            counted = {
                outcome: new.get(key, 0.0) - old.get(key, 0.0)
                for outcome in ("own", "duplicate", "delivered", "unrouted")
                if (key := f'sandcat_bus_events_total{{outcome="{outcome}"}}') in new
            }
            if counted:
                events[f"i{index}"] = counted
        if hops:
            result.numbers["hops_ms"] = hops
        relayed = sum(
            new.get("sandcat_outbox_relayed_total", 0.0)
            - old.get("sandcat_outbox_relayed_total", 0.0)
            for old, new in zip(self._before, after, strict=True)
        )
        if events:
            result.numbers["bus_events"] = events
            read = [sum(counts.values()) for counts in events.values()]
            # Every event is published once from the outbox (routing reads no "own" ones).
            published = relayed or sum(counts.get("own", 0.0) for counts in events.values())
            if published:
                # Events each instance read, as a share of all events published.
                result.numbers["events_read_share"] = {
                    name: round(total / published, 3)
                    for name, total in zip(events, read, strict=True)
                }
        self.unpin()
        return result


#: Histograms summarised per instance as the cross-instance path's hops.
_HOPS = {
    "send_to_commit": "sandcat_send_commit_seconds",
    "transaction": "sandcat_store_append_seconds",
    "outbox_read": 'sandcat_relay_hop_seconds{hop="outbox_read"}',
    "produce_to_broker_ack": "sandcat_bus_publish_seconds",
    "broker_ack": 'sandcat_relay_hop_seconds{hop="broker_ack"}',
    "consumed": 'sandcat_relay_hop_seconds{hop="consumed"}',
    "delivered": 'sandcat_relay_hop_seconds{hop="delivered"}',
}


def histogram_delta(
    before: dict[str, float], after: dict[str, float], series: str
) -> dict[str, float]:
    """Count, mean and bucket-interpolated p50/p99 (ms) of what a histogram
    recorded between two readings; ``series`` is ``name`` or ``name{label="v"}``."""
    name, _, labels = series.partition("{")
    labels = labels.rstrip("}")
    tag = f"{{{labels}}}" if labels else ""

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    count = delta(f"{name}_count{tag}")
    if count <= 0:
        return {"count": 0}
    prefix = f'{name}_bucket{{{labels + "," if labels else ""}le="'
    bounds = sorted(
        (math.inf if key[len(prefix) : -2] == "+Inf" else float(key[len(prefix) : -2]), key)
        for key in after
        if key.startswith(prefix)
    )
    cumulative = [(bound, delta(key)) for bound, key in bounds]

    def quantile(q: float) -> float:
        rank = q * count
        lower, below = 0.0, 0.0
        for bound, seen in cumulative:
            if seen >= rank:
                if math.isinf(bound):
                    return lower * 1000
                share = (rank - below) / max(seen - below, 1e-9)
                return (lower + (bound - lower) * share) * 1000
            lower, below = bound, seen
        return lower * 1000  # pragma: no cover - the +Inf bucket holds every sample

    return {
        "count": count,
        "mean": round(delta(f"{name}_sum{tag}") / count * 1000, 3),
        "p50": round(quantile(0.5), 3),
        "p99": round(quantile(0.99), 3),
    }


def _brief_metrics(values: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in values.items() if "_bucket" not in name}


class CpuMeter:
    """The servers' CPU seconds over the measured phase (when they are local processes):
    summed over every instance, and each instance's own with its RSS at the end."""

    def __init__(self, targets: list[Target]) -> None:
        self._targets = targets
        self._start = [target.cpu_seconds() for target in targets]
        self._wall = time.perf_counter()

    def numbers(self, units: int, unit: str) -> dict[str, object]:
        ends = [target.cpu_seconds() for target in self._targets]
        wall = time.perf_counter() - self._wall
        spent: list[float] = []
        for start, end in zip(self._start, ends, strict=True):
            if start is None or end is None:
                return {}
            spent.append(end - start)
        cpu = sum(spent)
        numbers: dict[str, object] = {
            "server_cpu_s": round(cpu, 3),
            "server_cpu_share": round(cpu / wall, 3),
        }
        if units:
            numbers[f"server_cpu_us_per_{unit}"] = round(cpu / units * 1e6, 2)
        numbers["instances"] = {
            f"i{index}": {
                "cpu_s": round(used, 3),
                "cpu_share": round(used / wall, 3),
                "rss_bytes": target.rss_bytes() or 0,
            }
            for index, (used, target) in enumerate(zip(spent, self._targets, strict=True))
        }
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


async def _measure(ctx: Context, plans: list[Plan]) -> tuple[Samples, CpuMeter, list[float]]:
    """Run the plans; their samples, the CPU meter and the probe's latencies."""
    async with _probing(ctx) as probed:
        meter = CpuMeter(ctx.instances)
        samples = await trio.to_thread.run_sync(run_workers, plans, ctx.pin_loadgen())
    return samples, meter, probed


@asynccontextmanager
async def _probing(ctx: Context) -> AsyncIterator[list[float]]:
    if ctx.probe is None:
        yield []
        return
    async with ctx.probe() as probed:
        yield probed


def _crosses(index: int, share: float) -> bool:
    """Whether pair ``index`` is a cross-instance one, ``share`` of them evenly spread."""
    return math.floor((index + 1) * share) > math.floor(index * share)


def _latencies(samples: Samples, probed: list[float]) -> dict[str, list[float]]:
    latencies = {"send_to_ack": samples.ack_s, "send_to_delivery": samples.delivery_s}
    if samples.delivery_cross_s:
        latencies["send_to_delivery_same"] = samples.delivery_same_s
        latencies["send_to_delivery_cross"] = samples.delivery_cross_s
    if probed:
        latencies["probe_pg_commit"] = probed
    return latencies


async def direct(
    ctx: Context,
    *,
    pairs: int = 1,
    window: int = 256,
    rate: float = 0.0,
    duration_s: float = 10.0,
    workers: int = 1,
    body_bytes: int = 0,
    cross: float = 0.5,
) -> Result:
    """P sender -> receiver pairs; max rate with W unacked, or ``rate`` msgs/s in total.

    In a cluster, pair i's sender is on instance i (round robin) and ``cross``
    of the pairs (evenly spread) have their receiver on the next instance, the
    rest on the sender's: delivery latencies are reported for both.
    """
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
        "cross": cross if len(ctx.instances) > 1 else 0.0,
    }
    result = await ctx.result("direct", params)
    indexed = list(enumerate(zip(couples, cids, strict=True)))
    crossing = len(ctx.instances) > 1

    def receiver(i: int, token: str) -> Peer:
        if crossing and _crosses(i, cross):
            return Peer(token, "r", port=ctx.ws_port(i + 1), cross=True)
        return Peer(token, "r", port=ctx.ws_port(i))

    plans = []
    for share in _split(indexed, max(1, min(workers, pairs))):
        plans.append(
            Plan(
                host=ctx.target.host,
                port=ctx.target.ws_port,
                senders=[
                    (i, Peer(a.token, "s", port=ctx.ws_port(i)), cid) for i, ((a, _), cid) in share
                ],
                receivers=[receiver(i, b.token) for i, ((_, b), _) in share],
                window=window,
                rate=rate / pairs if rate else 0.0,
                duration_s=duration_s,
                fanout=1,
                body_bytes=body_bytes,
            )
        )
    samples, meter, probed = await _measure(ctx, plans)
    elapsed = max(samples.last_event - samples.first_send, 1e-9)
    result.numbers = _message_numbers(samples, elapsed, 1)
    result.numbers.update(meter.numbers(samples.acked, "message"))
    result.latencies = _latencies(samples, probed)
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
    """One group of ``members``, all online; ``senders`` of them send into it.

    In a cluster the senders are on the first instance and the listeners
    spread round robin over all of them.
    """
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
            receivers=[
                Peer(m.token, "r", port=ctx.ws_port(j), cross=j % len(ctx.instances) != 0)
                for j, m in listen
            ],
            window=window,
            rate=rate / senders if rate else 0.0,
            duration_s=duration_s,
            fanout=members - 1,
        )
        for share, listen in zip(
            _split(talkers, parts),
            _split(list(enumerate(listeners)), parts),
            strict=True,
        )
    ]
    samples, meter, probed = await _measure(ctx, plans)
    elapsed = max(samples.last_event - samples.first_send, 1e-9)
    result.numbers = _message_numbers(samples, elapsed, members - 1)
    result.numbers.update(meter.numbers(samples.delivered, "delivery"))
    last = [latest for count, latest in samples.per_message.values() if count >= members - 1]
    result.latencies = {**_latencies(samples, probed), "send_to_last_member": last}
    result.timelines = samples.timelines
    return await ctx.finish(result)


async def catchup(
    ctx: Context, *, messages: int = 20000, conversations: int = 10, window: int = 256
) -> Result:
    """A user offline while N messages arrive over K conversations; then SYNC + PULL all.

    In a cluster the writers send through the first instance and the reader
    catches up through the last.
    """
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
    meter = CpuMeter(ctx.instances)
    started = time.perf_counter()
    timeline = Timeline(started)
    reading = ctx.instances[-1]
    link = await hello(reading.host, reading.ws_port, Peer(reader.token, "catchup"))
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
    """Open C authenticated idle connections; connect rate, failures, server RSS each.

    In a cluster the connections spread round robin over the instances.
    """
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
    rss_before = _rss(ctx.instances)
    meter = CpuMeter(ctx.instances)
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
                    ctx.target.host, ctx.ws_port(index), Peer(user.token, f"i{index}")
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
        rss_after = _rss(ctx.instances)
        counted = [await target.metrics() for target in ctx.instances]
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
        "server_connections": sum(m.get("sandcat_connections", -1.0) for m in counted),
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


def _rss(targets: list[Target]) -> int | None:
    """The instances' resident set sizes summed (None unless all are local processes)."""
    sizes = [target.rss_bytes() for target in targets]
    if any(size is None for size in sizes):
        return None
    return sum(size or 0 for size in sizes)


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
    meter = CpuMeter(ctx.instances)
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
