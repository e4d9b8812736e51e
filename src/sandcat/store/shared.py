"""State every instance shares: in process when alone, in Redis in a cluster.

This is the one place that chooses between the memory and the Redis
implementations; ``backends.redis_url`` decides. Embedded mode keeps
rate-limit counters, frame budgets, the session cache and the presence and
call books in process, needs no revocation log (one instance closes its own
sockets) and no broadcast. Cluster mode keeps them all in one Redis, over ONE
client, adds the revocation log every instance polls, and the two broadcasts
(session ends and READ_STATE pushes; typing, presence and call signals).
Nothing here is the only copy of anything: Redis may lose it all (FLUSHALL)
and the server stays correct.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sandcat.bus.broadcast import Broadcast
from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.errors import BackendFailure, ignore_failure
from sandcat.store.budgets import Budgets, LocalBudgets
from sandcat.store.cache import Cache, LocalCache
from sandcat.store.calls import CallBook, MemoryCallBook
from sandcat.store.connections import ConnectionBook, MemoryConnectionBook
from sandcat.store.presence import MemoryPresenceBook, PresenceBook
from sandcat.store.ratelimit import Limiters, LocalLimiters
from sandcat.store.revocations import Revocations
from sandcat.store.routes import RouteBook


@dataclass(frozen=True, slots=True)
class SharedState:
    limiters: Limiters
    #: Rebuildable: sessions recently found live (``Accounts.authenticate``).
    cache: Cache
    #: Which devices are online, and how they appear.
    presence: PresenceBook
    #: Calls ringing or in progress.
    calls: CallBook
    #: Cluster mode only: the log of revoked sessions every instance polls.
    revocations: Revocations | None = None
    #: Per-user frame budgets (``gateway.user_rate_per_s``; None when that is 0).
    budgets: Budgets | None = None
    #: Cluster mode only: session ends and READ_STATE pushes to every instance.
    broadcast: Broadcast | None = None
    #: Cluster mode only: typing, presence and call signals to every instance.
    signals: Broadcast | None = None
    #: Cluster mode only: which instances hold each user's devices (the presence book).
    routes: RouteBook | None = None
    #: Each instance's connection count: in Redis (the cluster's), else this process's.
    connections: ConnectionBook = field(default_factory=MemoryConnectionBook)


@asynccontextmanager
async def open_shared_state(
    config: Config, clock: Clock, *, on_failure: BackendFailure = ignore_failure
) -> AsyncIterator[SharedState]:
    """The shared state ``config`` asks for; ``on_failure`` hears of every failed Redis call."""
    gateway, backends = config.gateway, config.backends
    if not backends.redis_url:
        budgets = None
        if gateway.user_rate_per_s:
            budgets = LocalBudgets(rate_per_s=gateway.user_rate_per_s, burst=gateway.user_burst)
        yield SharedState(
            LocalLimiters(clock),
            LocalCache(clock),
            MemoryPresenceBook(),
            MemoryCallBook(),
            budgets=budgets,
        )
        return
    from sandcat.bus.redis import RedisBroadcast
    from sandcat.store.redis import (
        RedisBudgets,
        RedisCache,
        RedisLimiters,
        RedisRevocations,
        RedisState,
        open_redis_client,
        redis_books,
    )

    url, timeout_s = backends.redis_url, backends.redis_timeout_s
    async with open_redis_client(url, timeout_s=timeout_s) as client:
        state = RedisState(
            client, prefix=backends.redis_prefix, timeout_s=timeout_s, on_failure=on_failure
        )
        books = redis_books(
            client,
            prefix=f"{backends.redis_channel}:",
            timeout_s=timeout_s,
            on_failure=on_failure,
        )
        shared_budgets = None
        if gateway.user_rate_per_s:
            shared_budgets = RedisBudgets(
                state, rate_per_s=gateway.user_rate_per_s, burst=gateway.user_burst
            )
        yield SharedState(
            RedisLimiters(state, clock),
            RedisCache(state),
            books.presence,
            books.calls,
            RedisRevocations(state),
            budgets=shared_budgets,
            broadcast=RedisBroadcast(
                client,
                url=url,
                channel=backends.redis_channel,
                timeout_s=timeout_s,
                on_failure=on_failure,
            ),
            signals=RedisBroadcast(
                client,
                url=url,
                channel=f"{backends.redis_channel}.signals",
                timeout_s=timeout_s,
                on_failure=on_failure,
            ),
            routes=books.routes,
            connections=books.connections,
        )
