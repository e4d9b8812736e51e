"""A per-user frame budget shared by all of a user's connections, on every instance.

Each connection has its own token bucket (``gateway.throttle``); a user with
several devices, spread over several instances, also shares one budget of
``user_rate_per_s`` frames per second (bursts up to ``user_burst``). Asking
the shared store for every frame would cost a round trip per frame, so a
connection *leases* tokens in blocks of ``user_lease`` and spends them
locally: one round trip per block. A lease may go unspent when the
connection closes, so the shared rate can undercount by at most one block
per connection; never more frames than the budget plus those blocks pass.

``LocalBudgets`` keeps the buckets in process (one instance);
``sandcat.store.redis.RedisBudgets`` keeps them in Redis, timed by the Redis
server's clock so instances' clocks need not agree. A budget store that
fails grants the lease (logged): losing Redis must not stop the chat.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import trio

#: Users whose buckets the in-process store remembers (the oldest go first,
#: which can only hand out a full bucket again).
_MAX_USERS = 100_000


@dataclass(frozen=True, slots=True)
class Lease:
    granted: int
    #: When nothing was granted: how long until a token is free.
    retry_after_ms: int = 0


class Budgets(Protocol):
    async def lease(self, user: str, want: int) -> Lease:
        """Take up to ``want`` tokens from ``user``'s shared bucket."""


class LocalBudgets:
    """Per-user token buckets in process memory."""

    def __init__(self, *, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def lease(self, user: str, want: int) -> Lease:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        tokens, at = self._buckets.pop(user, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        granted = min(want, math.floor(tokens))
        tokens -= granted
        self._buckets[user] = (tokens, now)
        if len(self._buckets) > _MAX_USERS:
            self._buckets.popitem(last=False)
        if granted:
            return Lease(granted)
        return Lease(0, max(1, math.ceil((1 - tokens) / self._rate * 1000)))
