"""Rate limits in Redis, shared by every instance (``sandcat.store.ratelimit``).

Each key is a sorted set of hit times (scores, in the injected clock's
milliseconds) trimmed to the window and to ``limit`` entries, expiring with
the window: the in-process limiter's sliding log, made atomic by a Lua
script. Redis losing its data (FLUSHALL, a restart) forgets hits, which can
only let requests through, never lock anyone out. While Redis is unreachable
each instance falls back to its own in-process counters (logged), so limits
still hold per instance and no request fails because of Redis.
"""

from __future__ import annotations

import logging
import secrets

from sandcat.clock import Clock
from sandcat.errors import StoreUnavailable
from sandcat.store.lockout import LocalLockout, LockoutPolicy
from sandcat.store.ratelimit import RateLimiter
from sandcat.store.redis.client import RedisState

log = logging.getLogger(__name__)

# ARGV: now_ms, window_ms, limit, member, mode ("peek", "take", "hit", "reset").
_SCRIPT = """
local key = KEYS[1]
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[5] == 'reset' then
  redis.call('DEL', key)
  return 0
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local wait = 0
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  wait = math.max(1, tonumber(oldest[2]) + window - now)
end
if ARGV[5] == 'hit' or (ARGV[5] == 'take' and wait == 0) then
  redis.call('ZADD', key, now, ARGV[4])
  local extra = redis.call('ZCARD', key) - limit
  if extra > 0 then
    redis.call('ZREMRANGEBYRANK', key, 0, extra - 1)
  end
  redis.call('PEXPIRE', key, window)
end
return wait
"""


class RedisRateLimiter:
    """``RateLimits`` in Redis under ``ratelimit:NAME:KEY``."""

    def __init__(
        self, state: RedisState, *, name: str, limit: int, window_s: float, clock: Clock
    ) -> None:
        self._state = state
        self._prefix = f"ratelimit:{name}:"
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._clock = clock
        self._fallback = RateLimiter(limit=limit, window_s=window_s, clock=clock)

    async def _run(self, key: str, mode: str) -> int:
        member = f"{self._clock()}:{secrets.token_hex(4)}"
        args = (self._clock(), self._window_ms, self._limit, member, mode)
        try:
            return int(await self._state.script(_SCRIPT, [self._prefix + key], args))
        except StoreUnavailable as exc:
            log.warning("rate limit %s: %s; counting in process", self._prefix, exc.message)
        if mode == "reset":
            await self._fallback.reset(key)
            return 0
        if mode == "take":
            return await self._fallback.take(key)
        if mode == "hit":
            await self._fallback.hit(key)
            return 0
        return await self._fallback.retry_after_ms(key)

    async def retry_after_ms(self, key: str) -> int:
        return await self._run(key, "peek")

    async def hit(self, key: str) -> None:
        await self._run(key, "hit")

    async def take(self, key: str) -> int:
        return await self._run(key, "take")

    async def reset(self, key: str) -> None:
        await self._run(key, "reset")


class RedisLimiters:
    """``Limiters`` in Redis (cluster mode)."""

    def __init__(self, state: RedisState, clock: Clock) -> None:
        self._state = state
        self._clock = clock

    def limiter(self, name: str, *, limit: int, window_s: float) -> RedisRateLimiter:
        return RedisRateLimiter(
            self._state, name=name, limit=limit, window_s=window_s, clock=self._clock
        )

    def lockout(self, name: str, policy: LockoutPolicy) -> RedisLockout:
        return RedisLockout(self._state, name=name, policy=policy, clock=self._clock)


# KEYS[1]: a hash {failures, last, until}. ARGV: now_ms, mode ("peek", "fail",
# "reset"), free, base_ms, max_ms, window_ms. Returns the lock left (peek) or
# started (fail) in ms. The doubling is capped before it is computed.
_LOCKOUT = """
local key = KEYS[1]
local now, mode = tonumber(ARGV[1]), ARGV[2]
if mode == 'reset' then
  redis.call('DEL', key)
  return 0
end
local state = redis.call('HMGET', key, 'failures', 'last', 'until')
local failures = tonumber(state[1]) or 0
local last = tonumber(state[2]) or 0
local locked = tonumber(state[3]) or 0
if mode == 'peek' then
  return math.max(0, locked - now)
end
local free, base, most = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window = tonumber(ARGV[6])
if now - math.max(last, locked) > window then
  failures, locked = 0, 0
end
failures = failures + 1
local lock = 0
if failures >= free then
  lock = math.floor(math.min(base * 2 ^ math.min(failures - free, 62), most))
  locked = now + lock
end
redis.call('HSET', key, 'failures', failures, 'last', now, 'until', locked)
redis.call('PEXPIRE', key, math.max(locked, now) - now + window)
return lock
"""


class RedisLockout:
    """``Lockouts`` in Redis under ``lockout:NAME:KEY``; in process while Redis is down."""

    def __init__(
        self, state: RedisState, *, name: str, policy: LockoutPolicy, clock: Clock
    ) -> None:
        self._state = state
        self._prefix = f"lockout:{name}:"
        self._policy = policy
        self._clock = clock
        self._fallback = LocalLockout(policy, clock=clock)

    async def _run(self, key: str, mode: str) -> int | None:
        policy = self._policy
        args = (self._clock(), mode, policy.free, policy.base_ms, policy.max_ms, policy.window_ms)
        try:
            return int(await self._state.script(_LOCKOUT, [self._prefix + key], args))
        except StoreUnavailable as exc:
            log.warning("lockout %s: %s; counting in process", self._prefix, exc.message)
        return None

    async def retry_after_ms(self, key: str) -> int:
        wait = await self._run(key, "peek")
        return await self._fallback.retry_after_ms(key) if wait is None else wait

    async def fail(self, key: str) -> int:
        lock = await self._run(key, "fail")
        return await self._fallback.fail(key) if lock is None else lock

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        await self._run(key, "reset")
