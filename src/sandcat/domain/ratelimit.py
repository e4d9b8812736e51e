"""Keyed rate limits kept in process: at most ``limit`` hits per key per window.

Used for logins (per login name and per client address) and for verification
codes (per email and per address). Memory is bounded: past ``max_keys`` keys
the least recently used one is forgotten, which can only ever let a request
through, never lock someone out. In cluster mode these counters move to Redis
behind the same methods.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from sandcat.clock import Clock

#: Distinct keys remembered per limiter (~100 bytes each).
DEFAULT_MAX_KEYS = 100_000


class RateLimiter:
    def __init__(
        self, *, limit: int, window_s: float, clock: Clock, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._clock = clock
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[int]] = OrderedDict()

    def retry_after_ms(self, key: str) -> int:
        """0 if ``key`` may go ahead now, else how long until it may."""
        hits = self._hits.get(key)
        if hits is None:
            return 0
        now = self._clock()
        while hits and hits[0] <= now - self._window_ms:
            hits.popleft()
        if len(hits) < self._limit:
            return 0
        return max(1, hits[0] + self._window_ms - now)

    def hit(self, key: str) -> None:
        """Count one hit for ``key``."""
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self._limit)
            if len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(self._clock())

    def take(self, key: str) -> int:
        """Check and count in one step: 0 (and counted) or the wait in ms."""
        wait = self.retry_after_ms(key)
        if wait == 0:
            self.hit(key)
        return wait

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
