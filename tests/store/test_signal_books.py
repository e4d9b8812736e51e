"""PresenceBook and CallBook conformance: in memory and in a real Redis (Valkey)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from sandcat.errors import StoreUnavailable
from sandcat.store.calls import CallBook, CallRecord, MemoryCallBook
from sandcat.store.presence import MemoryPresenceBook, PresenceBook, Seen
from sandcat.store.redis import open_redis_books
from tests.postgres import free_port

_prefixes = itertools.count(1)
TTL = 60_000


@pytest.fixture(params=["memory", "redis"])
async def books(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PresenceBook, CallBook]]:
    if request.param == "memory":
        yield MemoryPresenceBook(), MemoryCallBook()
        return
    url = request.getfixturevalue("redis_url")
    async with open_redis_books(url, prefix=f"t{next(_prefixes)}:", timeout_s=5) as opened:
        yield opened.presence, opened.calls


async def test_a_user_is_online_while_any_device_is(books: Any) -> None:
    presence: PresenceBook = books[0]
    assert await presence.connect("u", "phone", instance="i1", now_ms=10, ttl_ms=TTL) == Seen(
        "online"
    )
    assert await presence.connect("u", "desk", instance="i2", now_ms=11, ttl_ms=TTL) is None
    assert await presence.disconnect("u", "phone", instance="i1", now_ms=12) is None
    assert await presence.connected("u", "desk", now_ms=12)
    assert not await presence.connected("u", "phone", now_ms=12)
    # Another instance does not hold the desk: its disconnect changes nothing.
    assert await presence.disconnect("u", "desk", instance="i1", now_ms=13) is None
    assert await presence.disconnect("u", "desk", instance="i2", now_ms=14) == Seen("offline", 14)
    assert await presence.appearances(["u", "nobody"], now_ms=15) == {"u": Seen("offline", 14)}
    assert await presence.disconnect("nobody", "x", instance="i1", now_ms=15) is None


async def test_chosen_status_shows_and_invisible_looks_offline(books: Any) -> None:
    presence: PresenceBook = books[0]
    await presence.connect("u", "phone", instance="i1", now_ms=10, ttl_ms=TTL)
    assert await presence.choose("u", "busy", now_ms=11) == Seen("busy")
    assert await presence.choose("u", "busy", now_ms=12) is None
    assert await presence.choose("u", "invisible", now_ms=13) == Seen("offline", 13)
    # Leaving while invisible changes nothing others see; last seen stays hidden.
    assert await presence.disconnect("u", "phone", instance="i1", now_ms=20) is None
    assert await presence.connect("u", "phone", instance="i1", now_ms=30, ttl_ms=TTL) is None
    assert await presence.appearances(["u"], now_ms=31) == {"u": Seen("offline", 13)}
    assert await presence.choose("u", "away", now_ms=32) == Seen("away")
    assert await presence.appearances(["u"], now_ms=33) == {"u": Seen("away")}


async def test_devices_not_refreshed_expire(books: Any) -> None:
    presence: PresenceBook = books[0]
    await presence.connect("u", "phone", instance="i1", now_ms=10, ttl_ms=100)
    assert await presence.appearances(["u"], now_ms=50) == {"u": Seen("online")}
    assert await presence.appearances(["u"], now_ms=200) == {"u": Seen("offline", None)}
    assert not await presence.connected("u", "phone", now_ms=200)
    # Refreshing an expired device announces the user again.
    assert await presence.connect("u", "phone", instance="i1", now_ms=300, ttl_ms=100) == Seen(
        "online"
    )


def record(call_id: str, caller: str = "a", callee: str = "b") -> CallRecord:
    return CallRecord(
        id=call_id, caller=caller, caller_device="da", callee=callee, media="audio", created_ms=5
    )


async def test_one_call_per_user(books: Any) -> None:
    calls: CallBook = books[1]
    assert await calls.open(record("k1"), ttl_ms=TTL) == "opened"
    assert await calls.open(record("k2", "c", "b"), ttl_ms=TTL) == "callee_busy"
    assert await calls.open(record("k3", "a", "c"), ttl_ms=TTL) == "caller_busy"
    assert await calls.get("k2") is None
    assert await calls.get("k1") == record("k1")
    closed = await calls.close("k1")
    assert closed == record("k1")
    assert await calls.close("k1") is None
    assert await calls.open(record("k4", "c", "b"), ttl_ms=TTL) == "opened"


async def test_answer_and_close_are_compare_and_set(books: Any) -> None:
    calls: CallBook = books[1]
    await calls.open(record("k1"), ttl_ms=TTL)
    answered = await calls.answer("k1", "db", now_ms=9)
    assert answered is not None
    assert (answered.state, answered.callee_device, answered.answered_ms) == ("active", "db", 9)
    assert answered.party("b", "db") == "callee"
    assert answered.party("a", "da") == "caller"
    assert answered.party("b", "other") is None
    assert await calls.answer("k1", "db2", now_ms=10) is None
    assert await calls.close("k1", ringing_only=True) is None
    await calls.touch(["k1", "gone"], ttl_ms=TTL)
    await calls.touch([], ttl_ms=TTL)
    assert await calls.close("k1") == answered
    assert await calls.answer("k1", "db", now_ms=11) is None


async def test_redis_claims_expire_unless_touched(redis_url: str) -> None:
    async with open_redis_books(redis_url, prefix=f"t{next(_prefixes)}:", timeout_s=5) as books:
        await books.calls.open(record("k1"), ttl_ms=300)
        await books.calls.touch(["k1"], ttl_ms=300)
        await trio.sleep(0.5)
        assert await books.calls.get("k1") is None
        assert await books.calls.open(record("k2"), ttl_ms=TTL) == "opened"


async def test_unreachable_redis_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        async with open_redis_books(f"redis://127.0.0.1:{free_port()}/0", prefix="x:", timeout_s=1):
            pass  # pragma: no cover
