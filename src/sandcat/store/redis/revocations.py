"""The revocation log in Redis: a stream every instance reads (``sandcat.store.revocations``).

Entries go to a capped stream (``revocations``; about ``keep`` entries, far
more than arrive between two polls). Each reader remembers the last entry id
it has seen and the log's *epoch*, a random token kept in Redis beside the
stream. If Redis loses its data the epoch key is gone: the next reader to
poll writes a new one, and every reader whose epoch differs reports a reset
(and starts again from the end of the stream), so its instance re-checks its
sockets against the database.
"""

from __future__ import annotations

import secrets

from sandcat.store.redis.client import RedisState
from sandcat.store.revocations import RevocationBatch, Revoked

_STREAM = "revocations"
_EPOCH = "revocations:epoch"

# KEYS: stream, epoch. ARGV: user, session ("" for all), keep.
_APPEND = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'u', ARGV[1], 's', ARGV[2])
return 1
"""

# KEYS: stream, epoch. ARGV: last id ("" on the first poll), reader's epoch, a fresh
# epoch token, count. Returns {epoch, last id, entries}.
_POLL = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[3])
  epoch = ARGV[3]
end
if ARGV[1] == '' or epoch ~= ARGV[2] then
  local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local last = '0-0'
  if #tail > 0 then last = tail[1][1] end
  return {epoch, last, {}}
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[4])
local last = ARGV[1]
if #entries > 0 then last = entries[#entries][1] end
return {epoch, last, entries}
"""

#: Entries read per poll at most (the rest come with the next poll).
_COUNT = 1000


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRevocations:
    """``Revocations`` over Redis; each object is one reader (one per instance)."""

    def __init__(self, state: RedisState, *, keep: int = 10_000) -> None:
        self._state = state
        self._keep = keep
        self._last = ""
        self._epoch = ""

    async def revoke(self, user: str, session: str | None) -> None:
        await self._state.script(_APPEND, [_STREAM, _EPOCH], [user, session or "", self._keep])

    async def poll(self) -> RevocationBatch:
        epoch, last, entries = await self._state.script(
            _POLL, [_STREAM, _EPOCH], [self._last, self._epoch, secrets.token_hex(8), _COUNT]
        )
        epoch, last = _text(epoch), _text(last)
        reset = bool(self._epoch) and epoch != self._epoch
        self._epoch, self._last = epoch, last
        revoked = []
        for _id, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            user, session = _text(values.get(b"u", b"")), _text(values.get(b"s", b""))
            if user:
                revoked.append(Revoked(user, session or None))
        return RevocationBatch(revoked, reset=reset)
