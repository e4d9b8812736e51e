"""Keyed rate limits: at most ``limit`` hits per key per sliding window.

Used for logins (per login name and per client address) and for verification
codes (per email and per address). ``RateLimits`` is the interface;
``RateLimiter`` keeps the counters in process (embedded mode) and
``sandcat.store.redis.RedisRateLimiter`` in Redis, shared by every instance
(cluster mode), with the same sliding-window semantics. A ``Limiters`` makes
the named limiters a use case needs, so the use cases never know which.

Memory is bounded in process: past ``max_keys`` keys the least recently used
one is forgotten, which can only ever let a request through, never lock
someone out (the same holds when Redis loses its data).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from typing import Protocol

from sandcat.clock import Clock
from sandcat.store.lockout import LocalLockout, LockoutPolicy, Lockouts

#: Distinct keys remembered per limiter (~100 bytes each).
DEFAULT_MAX_KEYS = 100_000
#: An IPv6 client is counted by this prefix: one subscriber is usually given a
#: whole /64 and can pick any address in it.
IPV6_CLIENT_PREFIX = 64


def address_key(ip: str | None) -> str:
    """The key a client address is counted under by per-address limits.

    An IPv4 address is itself (an IPv4-mapped IPv6 address counts as its IPv4
    address); an IPv6 address counts as its /64 network, so a client cannot
    spread over the 2**64 addresses one home or server is usually given. No
    address (or one that does not parse) is counted as itself, "?" if absent.
    """
    if not ip:
        return "?"
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


class RateLimits(Protocol):
    async def retry_after_ms(self, key: str) -> int:
        """0 if ``key`` may go ahead now, else how long until it may."""

    async def hit(self, key: str) -> None:
        """Count one hit for ``key``."""

    async def take(self, key: str) -> int:
        """Check and count in one step: 0 (and counted) or the wait in ms."""

    async def reset(self, key: str) -> None:
        """Forget ``key``'s hits."""


class Limiters(Protocol):
    def limiter(self, name: str, *, limit: int, window_s: float) -> RateLimits:
        """The limiter called ``name`` (its keys are apart from other names')."""

    def lockout(self, name: str, policy: LockoutPolicy) -> Lockouts:
        """The growing lockout called ``name`` (``sandcat.store.lockout``)."""


class RateLimiter:
    """``RateLimits`` in process memory."""

    def __init__(
        self, *, limit: int, window_s: float, clock: Clock, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._clock = clock
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[int]] = OrderedDict()

    def wait_ms(self, key: str) -> int:
        hits = self._hits.get(key)
        if hits is None:
            return 0
        now = self._clock()
        while hits and hits[0] <= now - self._window_ms:
            hits.popleft()
        if len(hits) < self._limit:
            return 0
        return max(1, hits[0] + self._window_ms - now)

    def count(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self._limit)
            if len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(self._clock())

    async def retry_after_ms(self, key: str) -> int:
        return self.wait_ms(key)

    async def hit(self, key: str) -> None:
        self.count(key)

    async def take(self, key: str) -> int:
        wait = self.wait_ms(key)
        if wait == 0:
            self.count(key)
        return wait

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)


class LocalLimiters:
    """``Limiters`` in process memory (embedded mode)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def limiter(self, name: str, *, limit: int, window_s: float) -> RateLimiter:
        return RateLimiter(limit=limit, window_s=window_s, clock=self._clock)

    def lockout(self, name: str, policy: LockoutPolicy) -> Lockouts:
        return LocalLockout(policy, clock=self._clock)
