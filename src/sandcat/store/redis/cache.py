"""The rebuildable cache in Redis, shared by every instance (``sandcat.store.cache``).

Entries are plain keys under ``cache:`` with a PX expiry. Redis failing is
a miss, logged: the caller goes to the database, which is always right.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sandcat.errors import StoreUnavailable
from sandcat.store.redis.client import RedisState

log = logging.getLogger(__name__)

_GET = "return redis.call('GET', KEYS[1])"
_PUT = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1"
_DELETE = "return redis.call('DEL', unpack(KEYS))"


class RedisCache:
    def __init__(self, state: RedisState) -> None:
        self._state = state

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._state.script(_GET, ["cache:" + key], [])
        except StoreUnavailable as exc:
            log.warning("cache get missed: %s", exc.message)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        try:
            await self._state.script(_PUT, ["cache:" + key], [value, max(1, ttl_ms)])
        except StoreUnavailable as exc:
            log.warning("cache put dropped: %s", exc.message)

    async def delete(self, keys: Collection[str]) -> None:
        if not keys:
            return
        try:
            await self._state.script(_DELETE, ["cache:" + key for key in keys], [])
        except StoreUnavailable as exc:
            # The entries expire by themselves (their TTL bounds how stale they get).
            log.warning("cache delete failed: %s", exc.message)
