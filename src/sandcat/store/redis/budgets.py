"""Per-user frame budgets in Redis (``sandcat.store.budgets``): one token bucket per
user, a hash of tokens and the time they were counted, refilled by a Lua script
on the Redis server's clock. FLUSHALL refills every bucket (only lets frames
through); a failing Redis grants the lease and logs it."""

from __future__ import annotations

import logging

from sandcat.errors import StoreUnavailable
from sandcat.store.budgets import Lease
from sandcat.store.redis.client import RedisState

log = logging.getLogger(__name__)

# KEYS: the bucket. ARGV: rate per second, burst, tokens wanted. Returns {granted, wait_ms}.
_LEASE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait = 0
if granted == 0 then
  wait = math.max(1, math.ceil((1 - tokens) / rate * 1000))
end
return {granted, wait}
"""


class RedisBudgets:
    def __init__(self, state: RedisState, *, rate_per_s: float, burst: int) -> None:
        self._state = state
        self._args = (repr(float(rate_per_s)), burst)

    async def lease(self, user: str, want: int) -> Lease:
        try:
            granted, wait = await self._state.script(
                _LEASE, ["budget:" + user], [*self._args, want]
            )
        except StoreUnavailable as exc:
            log.warning("frame budget of %s granted unchecked: %s", user, exc.message)
            return Lease(want)
        return Lease(int(granted), int(wait))
