"""``PresenceBook`` in Redis: one hash per user, changed by one script per step.

``{prefix}p:{user}`` holds ``st`` (chosen status), ``ls`` (last seen, ms) and
one ``d:{device}`` field per connected device, ``"{instance}|{expires_ms}"``.
The script computes how the user appears before and after the step in the
same atomic call, so concurrent connects and disconnects on different
instances report exactly one change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sandcat.store.presence import KEEP_MS, Seen

if TYPE_CHECKING:
    from sandcat.store.redis.books import Runner

_SEEN = """
local function seen(key, now)
  local status = redis.call('HGET', key, 'st') or 'online'
  local all = redis.call('HGETALL', key)
  local live = 0
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'd:' then
      local v = all[i + 1]
      local expires = tonumber(string.sub(v, string.find(v, '|', 1, true) + 1))
      if expires > now then live = live + 1 else redis.call('HDEL', key, all[i]) end
    end
  end
  if live == 0 or status == 'invisible' then return 'offline' end
  return status
end
"""

# KEYS[1] the user's hash; ARGV: op, now, device, instance, expires, status, keep_ms
_STEP = (
    _SEEN
    + """
local key, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local before = seen(key, now)
local field = 'd:' .. ARGV[3]
if op == 'connect' then
  redis.call('HSET', key, field, ARGV[4] .. '|' .. ARGV[5])
elseif op == 'disconnect' then
  local held = redis.call('HGET', key, field)
  if held and string.sub(held, 1, #ARGV[4] + 1) == ARGV[4] .. '|' then
    redis.call('HDEL', key, field)
  end
else
  redis.call('HSET', key, 'st', ARGV[6])
end
local after = seen(key, now)
if after == 'offline' and before ~= 'offline' then redis.call('HSET', key, 'ls', ARGV[2]) end
redis.call('PEXPIRE', key, ARGV[7])
return {before, after, redis.call('HGET', key, 'ls') or ''}
"""
)

# KEYS: the users' hashes; ARGV[1] now. Returns {state, last_seen} per key ('' if unknown).
_LOOK = (
    _SEEN
    + """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    table.insert(out, seen(key, tonumber(ARGV[1])))
    table.insert(out, redis.call('HGET', key, 'ls') or '')
  else
    table.insert(out, '')
    table.insert(out, '')
  end
end
return out
"""
)

#: Users looked up per script call (bounds one call's time on the server).
_LOOK_BATCH = 500


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _last_seen(value: Any) -> int | None:
    text = _text(value)
    return int(text) if text else None


class RedisPresenceBook:
    def __init__(self, runner: Runner, *, prefix: str) -> None:
        self._runner = runner
        self._prefix = prefix
        self._step = runner.script(_STEP)
        self._look = runner.script(_LOOK)

    def _key(self, user: str) -> str:
        return f"{self._prefix}p:{user}"

    async def _apply(self, user: str, *args: object) -> Seen | None:
        """Run one step (``args``: op, now, device, instance, expires, status)."""
        before, after, last_seen = await self._runner.run(
            self._step(keys=[self._key(user)], args=[*args, KEEP_MS])
        )
        state = _text(after)
        if _text(before) == state:
            return None
        return Seen(state, _last_seen(last_seen) if state == "offline" else None)

    async def connect(
        self, user: str, device: str, *, instance: str, now_ms: int, ttl_ms: int
    ) -> Seen | None:
        return await self._apply(user, "connect", now_ms, device, instance, now_ms + ttl_ms, "")

    async def disconnect(
        self, user: str, device: str, *, instance: str, now_ms: int
    ) -> Seen | None:
        return await self._apply(user, "disconnect", now_ms, device, instance, 0, "")

    async def choose(self, user: str, state: str, *, now_ms: int) -> Seen | None:
        return await self._apply(user, "choose", now_ms, "", "", 0, state)

    async def appearances(self, users: Sequence[str], *, now_ms: int) -> dict[str, Seen]:
        found: dict[str, Seen] = {}
        for start in range(0, len(users), _LOOK_BATCH):
            batch = users[start : start + _LOOK_BATCH]
            flat = await self._runner.run(
                self._look(keys=[self._key(user) for user in batch], args=[now_ms])
            )
            for index, user in enumerate(batch):
                state = _text(flat[2 * index])
                if state:
                    found[user] = Seen(
                        state, _last_seen(flat[2 * index + 1]) if state == "offline" else None
                    )
        return found

    async def connected(self, user: str, device: str, *, now_ms: int) -> bool:
        held = await self._runner.run(self._runner.client.hget(self._key(user), f"d:{device}"))
        return held is not None and int(_text(held).rsplit("|", 1)[1]) > now_ms
