"""Per-connection rate limiting: a token bucket, and a strike count for abuse.

A client over its rate gets ERR ``rate_limited`` with ``retry_after_ms`` and the
frame is not processed (protocol/SPEC.md §6). A client that keeps sending while
limited collects strikes; too many and it is closed with 4004. Time comes from
``trio.current_time`` so tests can drive it with a mock clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Verdict:
    allowed: bool
    retry_after_ms: int = 0
    #: The client ignored enough refusals in a row to count as abuse.
    abusive: bool = False


class Throttle:
    def __init__(self, *, rate_per_s: float, burst: int, strikes: int, now: float) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._strike_limit = strikes
        self._strikes = 0
        self._last = now

    def admit(self, now: float) -> Verdict:
        """Take one token for a frame arriving at ``now`` (seconds, monotonic)."""
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            self._strikes = 0
            return Verdict(allowed=True)
        self._strikes += 1
        wait_ms = math.ceil((1 - self._tokens) / self._rate * 1000)
        return Verdict(
            allowed=False,
            retry_after_ms=max(wait_ms, 1),
            abusive=self._strikes > self._strike_limit,
        )


class Pace:
    """A token bucket that is waited on, never refused: for work charged once done.

    Decoding a frame costs time in proportion to its maps and arrays, known only
    once it is decoded, and refusing a frame SPEC.md allows is not an option.
    So the cost is charged afterwards; a connection in debt waits until the
    bucket is back to zero before its next frame is read (TCP then slows the
    client). ``burst`` lets a fresh connection's largest frame through at once.
    """

    def __init__(self, *, rate_per_s: float, burst: int, now: float) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def charge(self, cost: int, now: float) -> float:
        """Take ``cost`` tokens at ``now``; the seconds to wait before more work (0: none)."""
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate) - cost
        self._last = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
