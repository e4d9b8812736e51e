"""Routing (docs/cluster-routing.md): slot choice and claims in a real PostgreSQL, the
route table in a real Redis (Valkey), and every fallback to all slots.

The bus under ``RoutedBus`` is the in-process one, which keeps the slot contract
(a slot's subscription gets that slot's records only); tests/cluster runs the same
over Kafka.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import coredis
import pytest
import trio
from coredis.retry import NoRetryPolicy

from sandcat.bus import Event, LocalBus, decode_event, encode_event
from sandcat.bus.bus import Record
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.consumer import run_consumer
from sandcat.pipeline.routing import RoutedBus
from sandcat.store.messages import StoredMessage
from sandcat.store.outbox import choose_slot
from sandcat.store.postgres.outbox import PostgresOutboxStore
from sandcat.store.redis import open_redis_books
from sandcat.store.redis.books import RedisBooks, Runner
from sandcat.store.redis.routes import RedisRouteBook
from tests.pipeline.test_pipeline import Directory
from tests.store.backend import Backend, open_backend
from tests.store.test_messages import AB, NOW

ME, B, C = "instance-me", "instance-b", "instance-c"
LEASE_S = 30.0
COUNT = 8


@pytest.mark.parametrize(
    ("taken", "count", "chosen"),
    [
        ([], 4, 0),
        ([0, 1], 4, 2),
        ([1, 3], 4, 0),
        ([0, 1, 2], 4, 3),  # max - 1 held: the last one
        ([0, 1, 2, 3], 4, 0),  # all held: shared, the lowest of the least shared
        ([0, 0, 1, 2, 3], 4, 1),
        ([4, 7, -1], 4, 0),  # out of range (the slot count shrank): ignored
        ([0], 1, 0),
    ],
)
def test_choose_slot(taken: list[int], count: int, chosen: int) -> None:
    assert choose_slot(taken, count) == chosen


def clock() -> int:
    return NOW


@pytest.fixture
async def db(postgres_url: str, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend("postgres", tmp_path=tmp_path, postgres_url=postgres_url) as backend:
        yield backend


@pytest.fixture
async def books(redis_url: str, redis_channel: str) -> AsyncIterator[RedisBooks]:
    async with open_redis_books(redis_url, prefix=f"{redis_channel}:", timeout_s=5) as books:
        yield books


def store_of(db: Backend) -> PostgresOutboxStore:
    return PostgresOutboxStore(db.db)  # type: ignore[arg-type]


def routed_bus(
    db: Backend,
    book: object,
    *,
    bus: LocalBus | None = None,
    settle_s: float = 0.0,
    metrics: ServerMetrics | None = None,
) -> RoutedBus:
    return RoutedBus(
        bus or LocalBus(),
        book,  # type: ignore[arg-type]
        store_of(db),
        owner=ME,
        count=COUNT,
        lease_s=LEASE_S,
        settle_s=settle_s,
        clock=clock,
        metrics=metrics,
    )


def record(members: tuple[str, ...] = ("a", "b"), *, origin: str = ME, seq: int = 1) -> Record:
    message = StoredMessage(
        cid=AB,
        seq=seq,
        mid=f"m{seq}",
        sender="a",
        device="laptop",
        cmid=f"c{seq}",
        kind=0,
        body=b"\xa2hi",
        ts=NOW,
    )
    return Record(AB, encode_event(Event(origin=origin, message=message, members=members)))


async def online(books: RedisBooks, user: str, device: str, instance: str) -> None:
    await books.presence.connect(user, device, instance=instance, now_ms=NOW, ttl_ms=60_000)


async def claims(db: Backend, *owners: str) -> dict[str, int]:
    store = store_of(db)
    return {owner: await store.claim_slot(owner, count=COUNT, lease_s=LEASE_S) for owner in owners}


async def test_instances_claim_distinct_slots_and_keep_them(db: Backend) -> None:
    store = store_of(db)
    assert await claims(db, ME, B, C) == {ME: 0, B: 1, C: 2}
    assert await store.slots(lease_s=LEASE_S) == {ME: 0, B: 1, C: 2}
    await store.retire(B)  # a stopped instance's slot is free at once
    assert await store.slots(lease_s=LEASE_S) == {ME: 0, C: 2}
    assert await store.claim_slot("instance-d", count=COUNT, lease_s=LEASE_S) == 1
    # Forgotten while silent (a take-over deletes stale owners): keeping writes it again.
    await db.db.write(
        lambda conn: conn.execute("DELETE FROM outbox_owners WHERE instance = %s", (C,))
    )  # type: ignore[attr-defined]
    assert await store.claim_slot(C, count=COUNT, lease_s=LEASE_S, keep=2) == 2
    assert (await store.slots(lease_s=LEASE_S))[C] == 2


async def test_an_event_goes_to_its_recipients_instances_only(
    db: Backend,
    books: RedisBooks,
) -> None:
    slots = await claims(db, ME, B, C)
    metrics = ServerMetrics.create()
    bus = LocalBus()
    routed = routed_bus(db, books.routes, bus=bus, metrics=metrics)
    assert await routed.claim() == slots[ME]
    await online(books, "b", "desk", B)
    await online(books, "b", "phone", ME)  # the origin delivered it itself: no copy
    async with bus.subscribe(slots[B]) as on_b, bus.subscribe(slots[C]) as on_c:
        await routed.publish([record()])
        got = await on_b.receive()
        assert [decode_event(value).key for value in got] == [(AB, 1)]
        with trio.move_on_after(0.2):
            await on_c.receive()
            raise AssertionError("C holds no recipient and read the event")
    assert metrics.route_lookups.value("routed") == 1
    # The sender's other device on C: C gets it too; nobody online: no copy at all.
    await online(books, "a", "tablet", C)
    assert sorted(r.slot for r in await routed.route([record()])) == [slots[B], slots[C]]  # type: ignore[type-var]
    assert await routed.route([record(("x", "y"))]) == []
    # Records already routed, and records that are not events, get no copies.
    assert await routed.route([Record(AB, b"not an event")]) == []
    assert await routed.route([Record(AB, record().value, slot=3)]) == []


async def test_taken_over_events_skip_their_dead_origin(
    db: Backend,
    books: RedisBooks,
) -> None:
    slots = await claims(db, ME, B)
    routed = routed_bus(db, books.routes)
    await routed.claim()
    await online(books, "b", "desk", B)
    await online(books, "a", "laptop", ME)
    # B died with this row; this instance publishes it: its own slot gets the copy.
    copies = await routed.route([record(origin=B)])
    assert [copy.slot for copy in copies] == [slots[ME]]


async def test_a_restarted_table_sends_to_every_slot_until_it_settles(
    db: Backend,
    books: RedisBooks,
    redis_channel: str,
) -> None:
    slots = await claims(db, ME, B, C)
    metrics = ServerMetrics.create()
    routed = routed_bus(db, books.routes, settle_s=60, metrics=metrics)
    await routed.claim()
    await online(books, "b", "desk", B)
    # The epoch was just started by this lookup (as after FLUSHALL): every slot.
    copies = await routed.route([record()])
    assert [copy.slot for copy in copies] == list(range(COUNT))
    assert metrics.route_lookups.value("settling") == 1
    # A lookup 60 s later (the settle time) routes by the table.
    later = RoutedBus(
        LocalBus(),
        books.routes,
        store_of(db),
        owner=ME,
        count=COUNT,
        lease_s=LEASE_S,
        settle_s=60,
        clock=lambda: NOW + 60_000,
        metrics=metrics,
    )
    await later.claim()
    assert [copy.slot for copy in await later.route([record()])] == [slots[B]]
    # A flush drops the epoch with the table: every slot again.
    client = books.presence._runner.client
    await client.delete([f"{redis_channel}:route:epoch"])
    await online(books, "b", "desk", B)
    assert len(await later.route([record()])) == COUNT
    assert metrics.route_lookups.value("settling") == 2


async def test_redis_unreachable_sends_to_every_slot(db: Backend) -> None:
    await claims(db, ME, B)
    client: coredis.Redis[bytes] = coredis.Redis(
        host="127.0.0.1", port=1, connect_timeout=0.5, retry_policy=NoRetryPolicy()
    )
    metrics = ServerMetrics.create()
    async with client:
        book = RedisRouteBook(Runner(client, timeout_s=1), prefix="x:")
        routed = routed_bus(db, book, metrics=metrics)
        await routed.claim()
        copies = await routed.route([record(), record(seq=2)])
    assert [copy.slot for copy in copies] == [*range(COUNT)] * 2
    assert metrics.route_lookups.value("redis_error") == 1


async def test_an_instance_not_yet_known_is_read_again_then_everyone_gets_it(
    db: Backend,
    books: RedisBooks,
) -> None:
    slots = await claims(db, ME, B)
    metrics = ServerMetrics.create()
    routed = routed_bus(db, books.routes, metrics=metrics)
    await routed.claim()
    # C started after the slots were read: one re-read finds it.
    slots |= await claims(db, C)
    await online(books, "b", "desk", C)
    assert [copy.slot for copy in await routed.route([record()])] == [slots[C]]
    # An instance with no slot at all (an older version, or not heartbeating): every slot.
    await online(books, "b", "phone", "instance-ghost")
    copies = await routed.route([record()])
    assert [copy.slot for copy in copies] == list(range(COUNT))
    assert metrics.route_lookups.value("unknown_instance") == 1


async def test_the_consumer_reads_its_slot_only(
    db: Backend,
    books: RedisBooks,
    nursery: trio.Nursery,
) -> None:
    slots = await claims(db, ME, B)
    bus = LocalBus()
    directory = Directory()
    metrics = ServerMetrics.create()
    await nursery.start(
        lambda task_status: run_consumer(
            bus,
            directory,
            instance=B,
            capacity=10,
            slot=slots[B],
            metrics=metrics,
            task_status=task_status,
        )
    )
    await bus.publish([record(seq=1), Record(AB, record(seq=2).value, slot=slots[ME])])
    await bus.publish([Record(AB, record(seq=3).value, slot=slots[B])])
    with trio.fail_after(10):
        while metrics.bus_events.value("unrouted") < 1:  # noqa: ASYNC110 - counted by the consumer
            await trio.sleep(0.01)
    await trio.sleep(0.1)
    assert metrics.bus_events.value("unrouted") == 1  # seq 3 only; nobody is online on B


async def test_keeping_writes_the_slot_again_and_rereads_the_others(
    db: Backend,
    books: RedisBooks,
    nursery: trio.Nursery,
) -> None:
    routed = RoutedBus(
        LocalBus(),
        books.routes,
        store_of(db),
        owner=ME,
        count=COUNT,
        lease_s=0.6,
        settle_s=0,
        clock=clock,
    )
    slot = await routed.claim()
    await nursery.start(routed.keep)
    # Another instance started since; then this one's row was forgotten (a take-over
    # while it was silent).
    other = await store_of(db).claim_slot(B, count=COUNT, lease_s=0.6)
    await db.db.write(  # type: ignore[attr-defined]
        lambda conn: conn.execute("DELETE FROM outbox_owners WHERE instance = %s", (ME,))
    )
    with trio.fail_after(20):
        while routed.slots != {ME: slot, B: other}:
            # B stays alive; this one's row comes back from keep alone.
            await store_of(db).claim_slot(B, count=COUNT, lease_s=0.6, keep=other)
            await trio.sleep(0.05)
    assert other != slot
