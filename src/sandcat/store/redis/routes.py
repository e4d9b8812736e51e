"""``RouteBook`` in Redis: the presence book's device entries, plus an epoch key.

``{prefix}route:epoch`` holds when the table was (re)started, in ms. It is
created by the first lookup that finds it missing: at a cluster's first start
and after a flush, which removes it with the presence hashes. Until
``settle_ms`` after that, every instance may still have devices the table does
not list (they are rewritten every ``presence_refresh_s``), so the lookup
answers None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandcat.store.redis.books import Runner

# KEYS[1] the epoch key, then the users' presence hashes; ARGV[1] now (ms).
# Returns the epoch, then per user the instances of its device entries, space-separated.
_HOLDERS = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
end
local out = {epoch}
for i = 2, #KEYS do
  local all = redis.call('HGETALL', KEYS[i])
  local held = {}
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, 2) == 'd:' then
      local v = all[j + 1]
      table.insert(held, string.sub(v, 1, string.find(v, '|', 1, true) - 1))
    end
  end
  table.insert(out, table.concat(held, ' '))
end
return out
"""

#: Users looked up per script call (bounds one call's time on the server).
_BATCH = 500


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRouteBook:
    def __init__(self, runner: Runner, *, prefix: str) -> None:
        self._runner = runner
        self._prefix = prefix
        self._holders = runner.script(_HOLDERS)

    async def holders(
        self, users: Sequence[str], *, now_ms: int, settle_ms: int
    ) -> dict[str, frozenset[str]] | None:
        found: dict[str, frozenset[str]] = {}
        epoch_key = f"{self._prefix}route:epoch"
        for start in range(0, max(len(users), 1), _BATCH):
            batch = users[start : start + _BATCH]
            flat = await self._runner.run(
                self._holders(
                    keys=[epoch_key, *(f"{self._prefix}p:{user}" for user in batch)],
                    args=[now_ms],
                )
            )
            if now_ms - int(_text(flat[0])) < settle_ms:
                return None
            for user, held in zip(batch, flat[1:], strict=True):
                instances = _text(held).split()
                if instances:
                    found[user] = frozenset(instances)
        return found
