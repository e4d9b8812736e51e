"""The outbox in PostgreSQL (the only store that has one): written with the messages,
read in order, removed once published, and taken over from instances that stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from sandcat.bus import decode_event
from sandcat.store.messages import Appended
from sandcat.store.outbox import Outbox, OutboxSignal
from sandcat.store.postgres.append import message_store
from sandcat.store.postgres.outbox import PostgresOutboxStore
from sandcat.store.sql.messages import SqlMessageStore
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


@pytest.fixture
def outbox(db: Backend) -> Outbox:
    return Outbox(PostgresOutboxStore(db.db), owner=ME, signal=OutboxSignal())  # type: ignore[arg-type]


@pytest.fixture
def messages(db: Backend, outbox: Outbox) -> SqlMessageStore:
    return message_store(db.db, outbox=outbox)  # type: ignore[arg-type]


async def test_each_new_message_writes_one_event_in_its_transaction(
    messages: SqlMessageStore, outbox: Outbox
) -> None:
    first = await messages.append(
        [new("a", AB, "1"), new("b", GROUP, "2"), new("a", AB, "1"), new("c", AB, "x")],
        now_ms=NOW,
        open_direct=False,
    )
    # A resend and a refused send write nothing.
    await messages.append([new("a", AB, "1")], now_ms=NOW, open_direct=False)
    rows = await outbox.store.pending(ME, limit=10)
    events = [decode_event(row.payload) for row in rows]
    assert [(row.cid, e.key) for row, e in zip(rows, events, strict=True)] == [
        (AB, (AB, 1)),
        (GROUP, (GROUP, 1)),
    ]
    assert all(e.origin == ME for e in events)
    assert events[0].members == ("a", "b")
    assert sorted(events[1].members) == ["a", "b", "c"]
    stored = first[0]
    assert isinstance(stored, Appended)
    assert events[0].message == stored.message
    with trio.fail_after(1):
        await outbox.signal.wait(5)  # the commit woke the publisher


async def test_pending_is_oldest_first_and_remove_deletes(
    messages: SqlMessageStore, outbox: Outbox
) -> None:
    for n in range(5):
        await messages.append([new("a", AB, f"c{n}")], now_ms=NOW, open_direct=False)
    rows = await outbox.store.pending(ME, limit=3)
    assert [decode_event(r.payload).message.seq for r in rows] == [1, 2, 3]
    await outbox.store.remove([r.id for r in rows])
    await outbox.store.remove([])
    rest = await outbox.store.pending(ME, limit=10)
    assert [decode_event(r.payload).message.seq for r in rest] == [4, 5]
    assert await outbox.store.pending("someone-else", limit=10) == []


async def test_rows_of_a_live_instance_stay_and_of_a_stale_one_are_taken(
    db: Backend, outbox: Outbox
) -> None:
    store = outbox.store
    other = message_store(
        db.db,  # type: ignore[arg-type]
        outbox=Outbox(store, owner="instance-b", signal=OutboxSignal()),
    )
    await store.heartbeat(ME)
    await store.heartbeat("instance-b")
    await other.append([new("a", AB, "1"), new("a", AB, "2")], now_ms=NOW, open_direct=False)
    assert await store.take_over(ME, lease_s=60) == 0
    assert len(await store.pending("instance-b", limit=10)) == 2
    await trio.sleep(0.3)
    await store.heartbeat(ME)
    assert await store.take_over(ME, lease_s=0.2) == 2
    assert await store.pending("instance-b", limit=10) == []
    assert len(await store.pending(ME, limit=10)) == 2
    # The stale instance is forgotten; its heartbeat comes back if it does.
    assert await db.scalar("SELECT count(*) FROM outbox_owners WHERE instance = 'instance-b'") == 0


async def test_a_retired_instance_is_taken_over_at_once(db: Backend, outbox: Outbox) -> None:
    store = outbox.store
    other = message_store(
        db.db,  # type: ignore[arg-type]
        outbox=Outbox(store, owner="instance-b", signal=OutboxSignal()),
    )
    await store.heartbeat("instance-b")
    await other.append([new("a", AB, "1")], now_ms=NOW, open_direct=False)
    await store.retire("instance-b")
    assert await store.take_over(ME, lease_s=3600) == 1


async def test_rows_of_an_instance_that_never_beat_are_taken(db: Backend, outbox: Outbox) -> None:
    other = message_store(
        db.db,  # type: ignore[arg-type]
        outbox=Outbox(outbox.store, owner="ghost", signal=OutboxSignal()),
    )
    await other.append([new("a", AB, "1")], now_ms=NOW, open_direct=False)
    assert await outbox.store.take_over(ME, lease_s=3600) == 1
