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
from sandcat.gateway.budget import Budgets, LocalBudgets


@dataclass(frozen=True, slots=True)
class SharedState:
    limiters: Limiters
    #: Rebuildable: sessions recently found live (``Accounts.authenticate``).
    cache: Cache
    #: Cluster mode only: the log of revoked sessions every instance polls.
    revocations: Revocations | None = None
    #: Per-user frame budgets (``gateway.user_rate_per_s``; None when that is 0).
    budgets: Budgets | None = None


@asynccontextmanager
async def open_shared_state(config: Config, clock: Clock) -> AsyncIterator[SharedState]:
    gateway = config.gateway
    if not config.backends.redis_url:
        budgets = None
        if gateway.user_rate_per_s:
            budgets = LocalBudgets(rate_per_s=gateway.user_rate_per_s, burst=gateway.user_burst)
        yield SharedState(LocalLimiters(clock), LocalCache(clock), budgets=budgets)
        return
    from sandcat.store.redis import (
        RedisBudgets,
        RedisCache,
        RedisLimiters,
        RedisRevocations,
        open_redis_state,
    )

    async with open_redis_state(
        config.backends.redis_url,
        timeout_s=config.backends.redis_timeout_s,
        prefix=config.backends.redis_prefix,
    ) as state:
        shared_budgets = None
        if gateway.user_rate_per_s:
            shared_budgets = RedisBudgets(
                state, rate_per_s=gateway.user_rate_per_s, burst=gateway.user_burst
            )
        yield SharedState(
            RedisLimiters(state, clock),
            RedisCache(state),
            RedisRevocations(state),
            budgets=shared_budgets,
        )
