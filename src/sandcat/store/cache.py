"""A rebuildable cache: what it holds can always be recomputed from the database.

Losing any entry (eviction, expiry, Redis FLUSHALL or restart, Redis down)
only costs a database query: a miss is always safe, so a cache that fails
answers "miss" (and logs) instead of raising. ``LocalCache`` keeps entries in
process (embedded mode); ``sandcat.store.redis.RedisCache`` shares them
between instances.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Protocol

import trio

from sandcat.clock import Clock

#: Entries the in-process cache keeps before it forgets the least recently used.
DEFAULT_MAX_ENTRIES = 100_000


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None (never stored, expired, or lost)."""

    async def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        """Store ``value`` under ``key`` for ``ttl_ms``."""

    async def delete(self, keys: Collection[str]) -> None:
        """Forget ``keys``."""


class LocalCache:
    """``Cache`` in process memory, bounded (least recently used entries go first)."""

    def __init__(self, clock: Clock, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        await trio.lowlevel.checkpoint()
        self._entries[key] = (self._clock() + ttl_ms, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def delete(self, keys: Collection[str]) -> None:
        await trio.lowlevel.checkpoint()
        for key in keys:
            self._entries.pop(key, None)
