"""The InboxStore conformance suite, run on SQLite, PostgreSQL and MongoDB
(briskdb, or a real MongoDB at $SANDCAT_TEST_MONGO_URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandcat.store.inbox import InboxStore, NewNotice
from sandcat.store.mongo import MongoInboxStore, open_mongo
from tests.store.backend import open_backend


@pytest.fixture(params=["sqlite", "postgres", "mongo"])
async def inbox_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InboxStore]:
    if request.param == "mongo":
        async with open_mongo(request.getfixturevalue("mongo_url"), timeout_s=10) as client:
            store = MongoInboxStore(client)
            await store.prepare()
            yield store
        return
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    async with open_backend(request.param, tmp_path=tmp_path, postgres_url=url) as backend:
        yield backend.inbox


def notice(user: str, n: int = 0) -> NewNotice:
    return NewNotice(user, "system", {"text": f"notice {n}", "n": n})


async def test_nseq_counts_per_user_from_1(inbox_store: InboxStore) -> None:
    written = await inbox_store.post([notice("a", 1), notice("b", 1), notice("a", 2)], now_ms=10)
    assert [(n.user, n.nseq) for n in written] == [("a", 1), ("b", 1), ("a", 2)]
    assert written[0].data == {"text": "notice 1", "n": 1}
    assert written[0].created_at == 10
    assert await inbox_store.head("a") == 2
    assert await inbox_store.head("b") == 1
    assert await inbox_store.head("nobody") == 0


async def test_pull_pages_in_nseq_order(inbox_store: InboxStore) -> None:
    await inbox_store.post([notice("a", n) for n in range(5)], now_ms=1)
    page = await inbox_store.pull("a", "d1", after=1, limit=2)
    assert [n.nseq for n in page.notices] == [2, 3]
    assert page.more is True
    assert page.max_nseq == 5
    page = await inbox_store.pull("a", "d1", after=3, limit=2)
    assert ([n.nseq for n in page.notices], page.more) == ([4, 5], False)
    page = await inbox_store.pull("b", "d1", after=None, limit=10)
    assert (page.notices, page.more, page.max_nseq) == ((), False, 0)


async def test_a_device_pulls_from_its_own_ack(inbox_store: InboxStore) -> None:
    await inbox_store.post([notice("a", n) for n in range(3)], now_ms=1)
    assert await inbox_store.ack("a", "d1", 2, live_devices=["d1", "d2"]) == 2
    mine = await inbox_store.pull("a", "d1", after=None, limit=10)
    theirs = await inbox_store.pull("a", "d2", after=None, limit=10)
    assert [n.nseq for n in mine.notices] == [3]
    assert [n.nseq for n in theirs.notices] == [1, 2, 3]


async def test_notices_are_deleted_once_every_live_device_acked(inbox_store: InboxStore) -> None:
    await inbox_store.post([notice("a", n) for n in range(3)], now_ms=1)
    await inbox_store.ack("a", "d1", 3, live_devices=["d1", "d2"])
    assert len((await inbox_store.pull("a", "d1", after=0, limit=10)).notices) == 3
    await inbox_store.ack("a", "d2", 2, live_devices=["d1", "d2"])
    assert [n.nseq for n in (await inbox_store.pull("a", "d1", after=0, limit=10)).notices] == [3]
    # A device that logged out no longer holds notices back.
    await inbox_store.ack("a", "d1", 3, live_devices=["d1"])
    assert (await inbox_store.pull("a", "d1", after=0, limit=10)).notices == ()
    # nseq is never reused after deletion.
    (again,) = await inbox_store.post([notice("a")], now_ms=2)
    assert again.nseq == 4


async def test_acks_never_move_back_and_stop_at_the_head(inbox_store: InboxStore) -> None:
    await inbox_store.post([notice("a", n) for n in range(3)], now_ms=1)
    assert await inbox_store.ack("a", "d1", 2**40, live_devices=["d1", "d2"]) == 3
    assert await inbox_store.ack("a", "d1", 1, live_devices=["d1", "d2"]) == 3
    (later,) = await inbox_store.post([notice("a")], now_ms=2)
    page = await inbox_store.pull("a", "d1", after=None, limit=10)
    assert [n.nseq for n in page.notices] == [later.nseq]


async def test_acks_of_one_user_leave_others_alone(inbox_store: InboxStore) -> None:
    await inbox_store.post([notice("a"), notice("b")], now_ms=1)
    await inbox_store.ack("a", "d1", 1, live_devices=["d1"])
    assert len((await inbox_store.pull("b", "d1", after=None, limit=10)).notices) == 1


async def test_expire_deletes_only_older_notices(inbox_store: InboxStore) -> None:
    await inbox_store.post([notice("a", 1)], now_ms=100)
    await inbox_store.post([notice("a", 2), notice("b", 2)], now_ms=200)
    assert await inbox_store.expire(before_ms=200) == 1
    page = await inbox_store.pull("a", "d1", after=0, limit=10)
    assert [n.nseq for n in page.notices] == [2]
    assert page.max_nseq == 2
    assert await inbox_store.expire(before_ms=201) == 2
