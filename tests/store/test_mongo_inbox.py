"""The MongoDB inbox beyond the conformance suite: no transactions, yet nseq stays
gap-free and never reused through crashes, races and retries (briskdb, or a real
MongoDB at $SANDCAT_TEST_MONGO_URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from sandcat.errors import StoreUnavailable
from sandcat.store.inbox import NewNotice, Notice
from sandcat.store.mongo import MongoInboxStore, open_mongo
from sandcat.store.mongo.client import Documents, MongoClient
from tests.postgres import free_port


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[MongoClient]:
    async with open_mongo(mongo_url, timeout_s=10) as opened:
        yield opened


@pytest.fixture
async def store(client: MongoClient) -> MongoInboxStore:
    inbox = MongoInboxStore(client)
    await inbox.prepare()
    return inbox


def notice(user: str, n: int = 0) -> NewNotice:
    return NewNotice(user, "system", {"n": n})


async def crashed_writer(client: MongoClient, user: str, nseq: int, created: int = 1) -> None:
    """What a writer that died between its insert and advancing the head leaves behind."""

    def insert(db: Documents) -> None:
        db.inbox.insert_one(
            {
                "_id": f"crashed-{nseq}",
                "user": user,
                "nseq": nseq,
                "type": "system",
                "data": {},
                "created": created,
            }
        )

    await client.run(insert)


async def test_a_notice_left_above_the_head_is_counted_and_skipped(
    store: MongoInboxStore, client: MongoClient
) -> None:
    await store.post([notice("a", 1)], now_ms=1)
    await crashed_writer(client, "a", 2)
    assert await store.head("a") == 2
    (next_one,) = await store.post([notice("a", 3)], now_ms=2)
    assert next_one.nseq == 3
    page = await store.pull("a", "d1", after=0, limit=10)
    assert [n.nseq for n in page.notices] == [1, 2, 3]


async def test_acking_a_crashed_writers_notice_never_frees_its_nseq(
    store: MongoInboxStore, client: MongoClient
) -> None:
    await crashed_writer(client, "a", 1)
    assert await store.ack("a", "d1", 1, live_devices=["d1"]) == 1
    assert (await store.pull("a", "d1", after=0, limit=10)).notices == ()
    (later,) = await store.post([notice("a")], now_ms=2)
    assert later.nseq == 2


async def test_expiring_a_crashed_writers_notice_never_frees_its_nseq(
    store: MongoInboxStore, client: MongoClient
) -> None:
    await crashed_writer(client, "a", 1, created=5)
    assert await store.expire(before_ms=10) == 1
    (later,) = await store.post([notice("a")], now_ms=20)
    assert later.nseq == 2


async def test_delivering_the_same_key_twice_stores_one_notice(store: MongoInboxStore) -> None:
    original = Notice("a", 7, "friend.requested", {"from": "b"}, 42)
    (first,) = await store.deliver([("sql:a:7", original)])
    (again,) = await store.deliver([("sql:a:7", original)])
    assert first == again == Notice("a", 1, "friend.requested", {"from": "b"}, 42)
    assert [n.nseq for n in (await store.pull("a", "d1", after=0, limit=10)).notices] == [1]


async def test_two_instances_posting_to_one_user_get_distinct_contiguous_nseqs(
    store: MongoInboxStore, mongo_url: str
) -> None:
    got: list[int] = []
    async with open_mongo(mongo_url, timeout_s=10) as other_client:
        other = MongoInboxStore(other_client)

        async def post_three(inbox: MongoInboxStore) -> None:
            for n in range(3):
                (posted,) = await inbox.post([notice("a", n)], now_ms=1)
                got.append(posted.nseq)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(post_three, store)
            nursery.start_soon(post_three, other)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert await store.head("a") == 6


async def test_an_unreachable_server_is_unavailable_within_the_deadline() -> None:
    async with open_mongo(f"mongodb://127.0.0.1:{free_port()}/x", timeout_s=0.3) as dead:
        with trio.fail_after(5), pytest.raises(StoreUnavailable):
            await MongoInboxStore(dead).head("a")


async def test_a_hostile_notice_body_is_stored_as_data(store: MongoInboxStore) -> None:
    # Operator-looking keys inside data are values, never query operators.
    (stored,) = await store.post([NewNotice("a", "system", {"$where": "1", "x.y": 1})], now_ms=1)
    page = await store.pull("a", "d1", after=0, limit=10)
    assert page.notices == (stored,)
