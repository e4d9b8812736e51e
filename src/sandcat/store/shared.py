"""State every instance shares: in process when alone, in Redis in a cluster.

``backends.redis_url`` chooses. Embedded mode keeps rate-limit counters in
process and needs no revocation log (one instance closes its own sockets);
cluster mode keeps the counters in Redis, shared by every instance, and adds
the revocation log that every instance polls. The rebuildable cache (sessions
recently found live) follows the same split. Nothing here is the only copy
of anything: Redis may lose it all (FLUSHALL) and the server stays correct.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.domain.cache import Cache, LocalCache
from sandcat.domain.ratelimit import Limiters, LocalLimiters
from sandcat.domain.revocations import Revocations


@dataclass(frozen=True, slots=True)
class SharedState:
    limiters: Limiters
    #: Rebuildable: sessions recently found live (``Accounts.authenticate``).
    cache: Cache
    #: Cluster mode only: the log of revoked sessions every instance polls.
    revocations: Revocations | None = None


@asynccontextmanager
async def open_shared_state(config: Config, clock: Clock) -> AsyncIterator[SharedState]:
    if not config.backends.redis_url:
        yield SharedState(LocalLimiters(clock), LocalCache(clock))
        return
    from sandcat.store.redis import RedisCache, RedisLimiters, RedisRevocations, open_redis_state

    async with open_redis_state(
        config.backends.redis_url,
        timeout_s=config.backends.redis_timeout_s,
        prefix=config.backends.redis_prefix,
    ) as state:
        yield SharedState(RedisLimiters(state, clock), RedisCache(state), RedisRevocations(state))
