"""Notices committed in SQL reach the MongoDB inbox exactly once, pushed with the
inbox's nseq, and wait in SQL (nothing lost) while MongoDB is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import trio

from sandcat.domain.inbox_relay import InboxRelay, outbox_key
from sandcat.errors import StoreUnavailable
from sandcat.store.inbox import NewNotice, Notice
from sandcat.store.mongo import MongoInboxStore, open_mongo
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.inbox import SqlInboxStore
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.dialect import DIALECT
from tests.postgres import free_port


class Pushes:
    """The live push (the hub, in a server): records what would be pushed."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.arrived = trio.Event()

    def publish(self, notices: Sequence[Notice]) -> None:
        self.notices.extend(notices)
        self.arrived.set()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite", synchronous="NORMAL") as opened:
        yield opened


@pytest.fixture
async def mongo(mongo_url: str) -> AsyncIterator[MongoInboxStore]:
    async with open_mongo(mongo_url, timeout_s=10) as client:
        inbox = MongoInboxStore(client)
        await inbox.prepare()
        yield inbox


async def commit(db: Database, *notices: NewNotice) -> tuple[Notice, ...]:
    """What a contacts transaction does: write notices with its change."""
    return await db.write(lambda conn: Tx(conn, DIALECT).post(notices, 50))


async def test_committed_notices_move_to_mongo_and_are_pushed_with_its_nseq(
    db: Database, mongo: MongoInboxStore
) -> None:
    outbox, pushes = SqlInboxStore(db, DIALECT), Pushes()
    await mongo.post([NewNotice("bob", "system", {"text": "earlier"})], now_ms=1)
    await commit(db, NewNotice("bob", "friend.requested", {"from": "alice"}))
    relay = InboxRelay(outbox, mongo, notifier=pushes)
    assert await relay.relay_pending() == 1
    assert pushes.notices == [Notice("bob", 2, "friend.requested", {"from": "alice"}, 50)]
    assert await outbox.pending(10) == []
    page = await mongo.pull("bob", "d1", after=0, limit=10)
    assert [(n.nseq, n.type) for n in page.notices] == [(1, "system"), (2, "friend.requested")]


async def test_a_relay_that_died_after_mongo_stored_does_not_duplicate(
    db: Database, mongo: MongoInboxStore
) -> None:
    outbox, pushes = SqlInboxStore(db, DIALECT), Pushes()
    written = await commit(db, NewNotice("bob", "a", {}), NewNotice("bob", "b", {}))
    # The first relay stored both in MongoDB, then died before deleting the rows.
    await mongo.deliver([(outbox_key(n), n) for n in written])
    assert await InboxRelay(outbox, mongo, notifier=pushes).relay_pending() == 2
    assert [n.nseq for n in pushes.notices] == [1, 2]
    assert [n.nseq for n in (await mongo.pull("bob", "d", after=0, limit=10)).notices] == [1, 2]


async def test_notices_wait_in_sql_while_mongo_is_down(
    db: Database, mongo: MongoInboxStore
) -> None:
    outbox, pushes = SqlInboxStore(db, DIALECT), Pushes()
    await commit(db, NewNotice("bob", "a", {}))
    async with open_mongo(f"mongodb://127.0.0.1:{free_port()}/x", timeout_s=0.2) as dead:
        with pytest.raises(StoreUnavailable):
            await InboxRelay(outbox, MongoInboxStore(dead), notifier=pushes).relay_pending()
    assert len(await outbox.pending(10)) == 1
    assert pushes.notices == []
    # MongoDB is back: the next pass delivers it.
    assert await InboxRelay(outbox, mongo, notifier=pushes).relay_pending() == 1


async def test_the_relay_task_wakes_on_publish_and_sweeps_on_its_interval(
    db: Database, mongo: MongoInboxStore
) -> None:
    outbox, pushes = SqlInboxStore(db, DIALECT), Pushes()
    relay = InboxRelay(outbox, mongo, notifier=pushes)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: relay.run(interval_s=3600, task_status=task_status))
        relay.publish(await commit(db, NewNotice("bob", "a", {})))
        with trio.fail_after(10):
            await pushes.arrived.wait()
        nursery.cancel_scope.cancel()
    assert relay.relayed == 1


async def test_the_relay_task_survives_mongo_being_down(db: Database) -> None:
    outbox, pushes = SqlInboxStore(db, DIALECT), Pushes()
    await commit(db, NewNotice("bob", "a", {}))
    async with open_mongo(f"mongodb://127.0.0.1:{free_port()}/x", timeout_s=0.1) as dead:
        relay = InboxRelay(outbox, MongoInboxStore(dead), notifier=pushes)
        with trio.move_on_after(1):
            await relay.run(interval_s=0.05)
    assert len(await outbox.pending(10)) == 1
