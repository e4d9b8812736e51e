"""``ConnectionBook`` in Redis: one hash, a field per instance.

``{prefix}connections`` maps each instance to ``"{count}|{expires_ms}"``. One
script writes a report (or none, to only read) and sums the live ones in the
same call, dropping the expired: an instance that died is forgotten by the
next reader after its report's time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandcat.store.connections import Headcount

if TYPE_CHECKING:
    from sandcat.store.redis.books import Runner

# KEYS[1] the book; ARGV: now, instance ('' to only read), count, expires.
_TALLY = """
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '|' .. ARGV[4])
end
local all = redis.call('HGETALL', KEYS[1])
local total, live = 0, 0
for i = 1, #all, 2 do
  local v = all[i + 1]
  local bar = string.find(v, '|', 1, true)
  if bar and tonumber(string.sub(v, bar + 1)) > now then
    total = total + tonumber(string.sub(v, 1, bar - 1))
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return {total, live}
"""


class RedisConnectionBook:
    shared = True

    def __init__(self, runner: Runner, *, prefix: str) -> None:
        self._runner = runner
        self._key = f"{prefix}connections"
        self._tally = runner.script(_TALLY)

    async def _run(self, *args: object) -> Headcount:
        total, live = await self._runner.run(self._tally(keys=[self._key], args=list(args)))
        return Headcount(_int(total), _int(live))

    async def report(
        self, instance: str, connections: int, *, now_ms: int, ttl_ms: int
    ) -> Headcount:
        return await self._run(now_ms, instance, connections, now_ms + ttl_ms)

    async def total(self, *, now_ms: int) -> Headcount:
        return await self._run(now_ms, "", 0, 0)

    async def withdraw(self, instance: str) -> None:
        await self._runner.run(self._runner.client.hdel(self._key, [instance]))


def _int(value: Any) -> int:
    return int(value.decode() if isinstance(value, bytes) else value)
