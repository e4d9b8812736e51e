"""``CallBook`` in Redis: a hash per call, a claim per user, each step one script.

``{prefix}c:{id}`` holds the call's fields; ``{prefix}cu:{user}`` holds the id
of the call the user is in. Both expire after ``ttl_ms`` unless touched (the
instance that opened the call touches it while it lasts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sandcat.store.calls import CallRecord, Opened

if TYPE_CHECKING:
    from sandcat.store.redis.books import Runner

# KEYS: caller claim, callee claim, call; ARGV: id, ttl, then field, value, ...
_OPEN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[3], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 0
"""
# KEYS: call; ARGV: device, now
_ANSWER = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ringing' then return false end
redis.call('HSET', KEYS[1], 'state', 'active', 'callee_device', ARGV[1], 'answered_ms', ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""
# KEYS: call; ARGV: id, ringing_only, claim key prefix
_CLOSE = """
local call = redis.call('HGETALL', KEYS[1])
if #call == 0 then return false end
local f = {}
for i = 1, #call, 2 do f[call[i]] = call[i + 1] end
if ARGV[2] == '1' and f['state'] ~= 'ringing' then return false end
redis.call('DEL', KEYS[1])
for _, side in ipairs({'caller', 'callee'}) do
  local claim = ARGV[3] .. f[side]
  if redis.call('GET', claim) == ARGV[1] then redis.call('DEL', claim) end
end
return call
"""
# KEYS: calls; ARGV: ttl, claim key prefix
_TOUCH = """
for _, key in ipairs(KEYS) do
  if redis.call('PEXPIRE', key, ARGV[1]) == 1 then
    for _, side in ipairs({'caller', 'callee'}) do
      redis.call('PEXPIRE', ARGV[2] .. redis.call('HGET', key, side), ARGV[1])
    end
  end
end
return 0
"""
_OPENED: tuple[Opened, ...] = ("opened", "caller_busy", "callee_busy")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(flat: Any) -> CallRecord | None:
    if not flat:
        return None
    pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
    fields = {_text(name): _text(value) for name, value in pairs}
    return CallRecord(
        id=fields["id"],
        caller=fields["caller"],
        caller_device=fields["caller_device"],
        callee=fields["callee"],
        media=fields["media"],
        state=cast(Any, fields["state"]),
        created_ms=int(fields["created_ms"]),
        callee_device=fields.get("callee_device", ""),
        answered_ms=int(fields.get("answered_ms", "0")),
    )


class RedisCallBook:
    def __init__(self, runner: Runner, *, prefix: str) -> None:
        self._runner = runner
        self._claims = f"{prefix}cu:"
        self._calls = f"{prefix}c:"
        self._open = runner.script(_OPEN)
        self._answer = runner.script(_ANSWER)
        self._close = runner.script(_CLOSE)
        self._touch = runner.script(_TOUCH)

    async def open(self, call: CallRecord, *, ttl_ms: int) -> Opened:
        fields = {
            "id": call.id,
            "caller": call.caller,
            "caller_device": call.caller_device,
            "callee": call.callee,
            "media": call.media,
            "state": call.state,
            "created_ms": call.created_ms,
        }
        keys = [self._claims + call.caller, self._claims + call.callee, self._calls + call.id]
        args: list[object] = [call.id, ttl_ms]
        for name, value in fields.items():
            args += [name, value]
        result = await self._runner.run(self._open(keys=keys, args=args))
        return _OPENED[int(result)]

    async def get(self, call_id: str) -> CallRecord | None:
        return _record(await self._runner.run(self._runner.client.hgetall(self._calls + call_id)))

    async def answer(self, call_id: str, device: str, *, now_ms: int) -> CallRecord | None:
        keys = [self._calls + call_id]
        return _record(await self._runner.run(self._answer(keys=keys, args=[device, now_ms])))

    async def close(self, call_id: str, *, ringing_only: bool = False) -> CallRecord | None:
        keys = [self._calls + call_id]
        args = [call_id, int(ringing_only), self._claims]
        return _record(await self._runner.run(self._close(keys=keys, args=args)))

    async def touch(self, call_ids: Sequence[str], *, ttl_ms: int) -> None:
        if call_ids:
            keys = [self._calls + call_id for call_id in call_ids]
            await self._runner.run(self._touch(keys=keys, args=[ttl_ms, self._claims]))
