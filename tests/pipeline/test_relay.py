"""Publisher and consumer over the in-process bus and a real PostgreSQL outbox.

The Kafka bus runs the same code in tests/cluster; here the bus is the local
one, so the publisher's and consumer's own rules are checked quickly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import msgpack
import pytest
import trio

from sandcat.bus import BusUnavailable, Event, LocalBus, decode_event, encode_event
from sandcat.bus.bus import Record
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.consumer import RecentKeys, run_consumer
from sandcat.pipeline.publisher import _started_ms, run_publisher
from sandcat.protocol import Msg
from sandcat.store.messages import StoredMessage
from sandcat.store.outbox import Outbox, OutboxSignal
from sandcat.store.postgres.append import message_store
from sandcat.store.postgres.outbox import PostgresOutboxStore
from tests.pipeline.test_pipeline import Directory
from tests.store.backend import Backend, make_user, open_backend
from tests.store.test_messages import AB, GROUP, NOW, new

ME = "instance-a"


@pytest.fixture
async def db(postgres_url: str, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend("postgres", tmp_path=tmp_path, postgres_url=postgres_url) as backend:
        await backend.users(*(make_user(u) for u in ("a", "b", "c")))
        await backend.open_conversation(AB, "direct", ("a", "b"))
        await backend.open_conversation(GROUP, "group", ("a", "b", "c"))
        yield backend


def outbox_of(db: Backend, owner: str = ME) -> Outbox:
    return Outbox(PostgresOutboxStore(db.db), owner=owner, signal=OutboxSignal())  # type: ignore[arg-type]


async def send(outbox: Outbox, db: Backend, *cmids: str, cid: str = AB) -> None:
    store = message_store(db.db, outbox=outbox)  # type: ignore[arg-type]
    await store.append([new("a", cid, cmid) for cmid in cmids], now_ms=NOW, open_direct=False)


async def receive(subscription: object, count: int) -> list[Event]:
    got: list[Event] = []
    with trio.fail_after(10):
        while len(got) < count:
            got.extend(map(decode_event, await subscription.receive()))  # type: ignore[attr-defined]
    return got


class FlakyBus(LocalBus):
    """The local bus, failing its first ``failures`` publishes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, records: Sequence[Record]) -> None:
        if self.failures:
            self.failures -= 1
            raise BusUnavailable("broker away")
        await super().publish(records)


async def test_committed_events_are_published_then_removed(
    db: Backend, nursery: trio.Nursery
) -> None:
    outbox, bus, metrics = outbox_of(db), LocalBus(), ServerMetrics.create()
    async with bus.subscribe() as subscription:
        publisher = await nursery.start(
            lambda task_status: run_publisher(
                outbox, bus, lease_s=30, batch=2, metrics=metrics, task_status=task_status
            )
        )
        await send(outbox, db, "1", "2", "3")
        events = await receive(subscription, 3)
        assert [e.key for e in events] == [(AB, 1), (AB, 2), (AB, 3)]
        publisher.finish()
        with trio.fail_after(10):
            await publisher.done.wait()
    assert await outbox.store.pending(ME, limit=10) == []
    # Each batch (at most 2 rows) times its oldest row at both hops.
    batches = metrics.bus_publish.count
    assert batches >= 2
    assert metrics.relay_hops.count("outbox_read") == batches
    assert metrics.relay_hops.count("broker_ack") == batches
    # Retired: a live instance may take over at once (nothing is left to take).
    assert await db.scalar(
        "SELECT heartbeat_at = '-infinity' FROM outbox_owners WHERE instance = ?", ME
    )


def test_an_unreadable_outbox_row_is_relayed_untimed() -> None:
    assert _started_ms(b"not an event") is None
    assert _started_ms(encode_event(_event(ME, 1))) == NOW


async def test_a_failed_publish_keeps_the_rows_and_is_retried(
    db: Backend, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    outbox, bus = outbox_of(db), FlakyBus(failures=2)
    async with bus.subscribe() as subscription:
        await send(outbox, db, "1")
        await nursery.start(
            lambda task_status: run_publisher(
                outbox, bus, lease_s=30, batch=10, retry_s=0.01, task_status=task_status
            )
        )
        [event] = await receive(subscription, 1)
    assert event.key == (AB, 1)
    assert "outbox relay failed" in caplog.text


async def test_finishing_while_the_bus_is_down_leaves_the_rows_for_a_take_over(
    db: Backend, nursery: trio.Nursery
) -> None:
    outbox, bus = outbox_of(db), FlakyBus(failures=1_000_000)
    await send(outbox, db, "1")
    publisher = await nursery.start(
        lambda task_status: run_publisher(
            outbox, bus, lease_s=30, batch=10, retry_s=0.01, task_status=task_status
        )
    )
    publisher.finish()
    with trio.fail_after(10):
        await publisher.done.wait()
    assert len(await outbox.store.pending(ME, limit=10)) == 1
    assert await outbox.store.take_over("instance-b", lease_s=3600) == 1


async def test_the_rows_of_a_stopped_instance_are_taken_over_and_published(
    db: Backend, nursery: trio.Nursery
) -> None:
    dead, mine, bus = outbox_of(db, "instance-dead"), outbox_of(db), LocalBus()
    await dead.store.heartbeat(dead.owner)
    await send(dead, db, "1", "2", cid=GROUP)
    async with bus.subscribe() as subscription:
        await nursery.start(
            lambda task_status: run_publisher(
                mine, bus, lease_s=0.3, batch=10, idle_s=5, task_status=task_status
            )
        )
        events = await receive(subscription, 2)
    # Published by this instance, still carrying the origin that committed them.
    assert [(e.key, e.origin) for e in events] == [
        ((GROUP, 1), "instance-dead"),
        ((GROUP, 2), "instance-dead"),
    ]


async def test_a_lost_database_is_logged_and_survived(
    db: Backend, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = outbox_of(db)
    publisher = await nursery.start(
        lambda task_status: run_publisher(
            outbox, LocalBus(), lease_s=0.3, batch=10, retry_s=0.01, task_status=task_status
        )
    )
    await db.db.aclose()
    outbox.signal.set()
    # Both loops fail on their own schedule (a loaded machine may run the
    # heartbeat first): wait for each to have logged before finishing.
    with trio.fail_after(10):
        while not all(  # noqa: ASYNC110
            line in caplog.text for line in ("outbox heartbeat failed", "outbox relay failed")
        ):
            await trio.sleep(0.02)
    publisher.finish()
    with trio.fail_after(10):
        await publisher.done.wait()
    assert "could not give up the outbox lease" in caplog.text


def _event(origin: str, seq: int, *, sender: str = "a", device: str = "a-phone") -> Event:
    message = StoredMessage(
        cid=GROUP,
        seq=seq,
        mid=f"m{seq}",
        sender=sender,
        device=device,
        cmid=f"c{seq}",
        kind=1,
        body=msgpack.packb({"text": f"n{seq}"}),
        ts=NOW,
    )
    return Event(origin=origin, message=message, members=("a", "b", "c"))


async def test_the_consumer_delivers_other_instances_events_once(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    bus, directory, metrics = LocalBus(), Directory(), ServerMetrics.create()
    sending = directory.connect("a", "a-phone")
    laptop = directory.connect("a", "a-laptop")
    bob = directory.connect("b", "b-desk")
    await nursery.start(
        lambda task_status: run_consumer(
            bus, directory, instance=ME, capacity=100, metrics=metrics, task_status=task_status
        )
    )
    unreadable = _event("instance-b", 4)
    unreadable = Event(
        unreadable.origin,
        StoredMessage(**{**_fields(unreadable.message), "body": b"\xc1"}),
        unreadable.members,
    )
    await bus.publish(
        [
            Record(GROUP, encode_event(_event("instance-b", 1))),
            Record(GROUP, encode_event(_event(ME, 2))),  # delivered here already
            Record(GROUP, b"not an event"),
            Record(GROUP, encode_event(_event("instance-b", 1))),  # a repeat
            Record(GROUP, encode_event(unreadable)),
            Record(GROUP, encode_event(_event("instance-c", 3))),
            # Nobody here is a member: read, and counted as routed nowhere.
            Record(GROUP, encode_event(Event("instance-b", _event("", 5).message, ("z",)))),
        ]
    )
    with trio.fail_after(10):
        await bob.wait_for(2)
        await laptop.wait_for(2)
        while metrics.bus_events.value("unrouted") < 2:  # noqa: ASYNC110 - counted by the consumer
            await trio.sleep(0.01)
    await trio.sleep(0.05)
    # Every event read is counted once by its outcome (the unreadable body: delivered nowhere).
    counted = {
        outcome: metrics.bus_events.value(outcome)
        for outcome in ("own", "duplicate", "delivered", "unrouted")
    }
    assert counted == {"own": 1, "duplicate": 1, "delivered": 2, "unrouted": 2}
    # Hops: consumed for every new event, delivered for those pushed here.
    assert metrics.relay_hops.count("consumed") == 4
    assert metrics.relay_hops.count("delivered") == 2
    assert sending.pushed == []  # the sending device has its ack
    bob_frames = bob.frames()
    assert [(m.seq, m.cmid, m.device) for m in bob_frames] == [(1, None, None), (3, None, None)]  # type: ignore[attr-defined]
    laptop_frames = laptop.frames()
    assert all(isinstance(m, Msg) for m in laptop_frames)
    assert [(m.seq, m.cmid, m.device) for m in laptop_frames] == [  # type: ignore[attr-defined]
        (1, "c1", "a-phone"),
        (3, "c3", "a-phone"),
    ]
    assert "not an event" in caplog.text
    assert "unreadable body" in caplog.text


def _fields(message: StoredMessage) -> dict[str, object]:
    return {name: getattr(message, name) for name in StoredMessage.__slots__}  # type: ignore[attr-defined]


def test_recent_keys_forget_the_oldest() -> None:
    keys = RecentKeys(2)
    assert keys.add(("c", 1))
    assert keys.add(("c", 2))
    assert not keys.add(("c", 1))
    assert keys.add(("c", 3))  # forgets ("c", 1)
    assert keys.add(("c", 1))
