"""Three ``sandcat serve`` instances on shared PostgreSQL, Redis and Kafka, under faults.

Each scenario (SIGKILL and SIGTERM of an instance, Redis FLUSHALL, a Kafka
restart, PostgreSQL stopped) keeps twelve devices (six users, on three instances) sending
direct and group messages while one thing breaks, then checks invariants
I1-I8 (``checker.py``) over the whole history recorded so far: the scenarios
run in order on one cluster, so each check covers every earlier one too.
The numbers (sends, acks, failures, convergence time) are printed; run with
``-s`` to see them.
"""

from __future__ import annotations

import time

import httpx
import pytest
import trio

from sandcat.protocol import Ok, Send
from tests.chaos.cluster import Cluster
from tests.chaos.workload import Cast, Numbers, run_scenario

pytestmark = pytest.mark.slow

#: How long the killed instance stays dead, and the broker and PostgreSQL stay down.
DEAD_S = 3.0
POSTGRES_DOWN_S = 5.0


async def test_sigkill_an_instance(chaos_cluster: Cluster, cast: Cast) -> None:
    victim = chaos_cluster.instances[0]

    async def fault(numbers: Numbers) -> None:
        await trio.to_thread.run_sync(victim.kill)
        await trio.sleep(DEAD_S)
        await trio.to_thread.run_sync(victim.start)

    connects = sum(d.connects for d in cast.devices)
    numbers = await run_scenario(chaos_cluster, cast, "sigkill", fault)
    # Every device homed on the victim came back through another instance.
    homed = [d for d in cast.devices if d.home == 0]
    assert sum(d.connects for d in cast.devices) - connects >= len(cast.devices) + len(homed)
    assert numbers.converge_s < 30
    print(numbers.line())


async def test_sigterm_an_instance_drains_cleanly(chaos_cluster: Cluster, cast: Cast) -> None:
    """F2: a graceful drain answers every request it took: no send through the draining
    instance is left without a reply (a lost link or a timeout)."""
    victim = chaos_cluster.instances[1]
    window: list[float] = []

    async def fault(numbers: Numbers) -> None:
        window.append(time.monotonic())
        assert await trio.to_thread.run_sync(victim.terminate) == 0
        window.append(time.monotonic())
        await trio.sleep(DEAD_S)
        await trio.to_thread.run_sync(victim.start)

    numbers = await run_scenario(chaos_cluster, cast, "sigterm", fault)
    begun, ended = window
    # Sends through the victim that were open at SIGTERM or began before it exited.
    during = [
        op
        for op in cast.history.ops
        if op.instance == victim.name
        and op.invoked <= ended
        and (op.completed is None or op.completed >= begun)
    ]
    unanswered = [op for op in during if op.result == "info" and op.code != "unavailable"]
    numbers.extra["sends_open_in_the_drain"] = len(during)
    numbers.extra["unanswered"] = len(unanswered)
    print(numbers.line())
    assert not unanswered, [(op.cmid, op.code) for op in unanswered]


async def test_flushall_redis(chaos_cluster: Cluster, cast: Cast) -> None:
    async def fault(numbers: Numbers) -> None:
        flushed, killed = await trio.to_thread.run_sync(chaos_cluster.flush_redis)
        assert flushed.startswith(b"+OK")
        # ":N" connections killed: at least each instance's subscriber.
        assert int(killed.strip().lstrip(b":")) >= len(chaos_cluster.instances)
        numbers.extra["redis_connections_killed"] = int(killed.strip().lstrip(b":"))

    print((await run_scenario(chaos_cluster, cast, "flushall", fault)).line())
    # Ephemeral fan-out (Redis pub/sub) came back too: a READ on one instance reaches
    # the peer's device on another as READ_STATE.
    reader = cast.devices[0]
    peers = [d for d in cast.devices if d.user != reader.user]
    async with trio.open_nursery() as nursery:
        for device in [reader, *peers]:
            nursery.start_soon(device.run)
        for device in [reader, *peers]:
            await device.wait_connected(15)
        assert reader.link is not None
        here = reader.link.name
        for cid in cast.history.conversations_of(reader.user):
            members = cast.history.members[cid]
            elsewhere = [
                d for d in peers if d.user in members and d.link is not None and d.link.name != here
            ]
            if cid.startswith("d:") and elsewhere:
                break
        else:
            pytest.fail("no direct peer on another instance")
        # A peer writes first: sending moves the sender's read seq (SPEC.md
        # "SYNC"), so the reader's last message would leave nothing to read.
        writer = elsewhere[0]
        assert writer.link is not None
        sent = await writer.link.call(
            Send(rid=writer.link.rid(), cid=cid, cmid="read-me", kind=1, body={"text": "read me"})
        )
        assert isinstance(sent, Ok), sent
        seq = int(sent.body["seq"])
        reply = await reader.mark_read(cid, seq)
        assert isinstance(reply, Ok), reply
        with trio.fail_after(10):
            while not any((cid, reader.user, seq) in d.read_states for d in elsewhere):  # noqa: ASYNC110
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    # The scenarios ran routed (docs/cluster-routing.md), and the flush put the
    # publishers back on every slot until the route table settled.
    lookups = await trio.to_thread.run_sync(route_lookups, chaos_cluster)
    assert lookups.get("routed", 0) > 0, lookups
    assert lookups.get("settling", 0) > 0, lookups


def route_lookups(cluster: Cluster) -> dict[str, float]:
    """``sandcat_route_lookups_total`` summed over the instances, by outcome."""
    found: dict[str, float] = {}
    for instance in cluster.instances:
        text = httpx.get(f"{instance.http_url}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith("sandcat_route_lookups_total{"):
                outcome = line.split('outcome="')[1].split('"')[0]
                found[outcome] = found.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
    return found


async def test_restart_the_kafka_broker(chaos_cluster: Cluster, cast: Cast) -> None:
    healed = 0.0

    async def fault(numbers: Numbers) -> None:
        nonlocal healed
        await trio.to_thread.run_sync(chaos_cluster.restart_kafka, DEAD_S)
        healed = time.monotonic()

    numbers = await run_scenario(chaos_cluster, cast, "kafka-restart", fault)
    # Deliveries resume: pushes across instances (only the bus carries those) after the heal.
    history = cast.history
    sent_on = {(op.cid, op.seq): op.instance for op in history.ops if op.outcome == "ok"}
    crossed = [
        r
        for r in history.receipts
        if r.source == "push"
        and r.at > healed
        and sent_on.get((r.cid, r.seq), r.instance) != r.instance
    ]
    numbers.extra["cross_instance_pushes_after_heal"] = len(crossed)
    print(numbers.line())
    assert crossed, "no push crossed instances after the broker came back:\n" + (
        chaos_cluster.log_lines("sandcat.bus.kafka", "sandcat.pipeline")
    )


async def test_stop_postgres(chaos_cluster: Cluster, cast: Cast) -> None:
    window: list[float] = []

    async def fault(numbers: Numbers) -> None:
        await trio.to_thread.run_sync(chaos_cluster.stop_postgres)
        window.append(time.monotonic())
        await trio.sleep(POSTGRES_DOWN_S)
        window.append(time.monotonic())
        await trio.to_thread.run_sync(chaos_cluster.start_postgres)

    numbers = await run_scenario(chaos_cluster, cast, "postgres-stop", fault)
    down, up = window
    ops = cast.history.ops
    assert not [op for op in ops if op.outcome == "ok" and down < (op.completed or 0) < up]
    refused = [op for op in ops if op.code == "unavailable" and down < (op.completed or 0) < up]
    assert refused, "sends were not refused with unavailable while PostgreSQL was down"
    resumed = min(
        op.completed or 0 for op in ops if op.outcome == "ok" and (op.completed or 0) > up
    )
    numbers.extra["unavailable_while_down"] = len(refused)
    numbers.extra["first_ack_after_restart_s"] = round(resumed - up, 2)
    print(numbers.line())
