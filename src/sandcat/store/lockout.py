"""Growing lockouts: a key may fail ``free - 1`` times, then every failure locks it.

Used for logins per account: the ``free``-th failure within ``window_s`` of the
previous one locks the key for ``base_ms``, each further failure (made once a
lock has passed) for twice the last lock, up to ``max_ms``. A key that has
not failed for ``window_s`` starts again from nothing, and ``reset`` (a
successful login) forgets it at once.

``Lockouts`` is the interface; ``LocalLockout`` keeps the state in process
(embedded mode) and ``sandcat.store.redis.RedisLockout`` in Redis, shared by
every instance (cluster mode). Memory is bounded in process like the rate
limiters' (``sandcat.store.ratelimit``): forgetting a key can only ever let
an attempt through, never lock someone out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from sandcat.clock import Clock

#: Distinct keys remembered per lockout (~150 bytes each).
DEFAULT_MAX_KEYS = 100_000


class Lockouts(Protocol):
    async def retry_after_ms(self, key: str) -> int:
        """0 if ``key`` is not locked now, else how long until it is not."""

    async def fail(self, key: str) -> int:
        """Count one failure for ``key``; the lock it starts now in ms (0: none)."""

    async def reset(self, key: str) -> None:
        """Forget ``key``'s failures and lock."""


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    #: Failures (the last one included) before the first lock.
    free: int
    #: The first lock; each further failure doubles it.
    base_ms: int
    #: The longest lock.
    max_ms: int
    #: This long after the last failure or lock, counting starts from nothing.
    window_ms: int

    def lock_ms(self, failures: int) -> int:
        """The lock after the ``failures``-th failure in a row."""
        if failures < self.free:
            return 0
        # Capped before shifting: 2**n of an attacker's count is never built.
        doublings = min(failures - self.free, self.max_ms.bit_length())
        return min(self.base_ms << doublings, self.max_ms)


@dataclass(slots=True)
class _State:
    failures: int
    last_ms: int
    locked_until_ms: int


class LocalLockout:
    """``Lockouts`` in process memory."""

    def __init__(
        self, policy: LockoutPolicy, *, clock: Clock, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._max_keys = max_keys
        self._states: OrderedDict[str, _State] = OrderedDict()

    async def retry_after_ms(self, key: str) -> int:
        state = self._states.get(key)
        return 0 if state is None else max(0, state.locked_until_ms - self._clock())

    async def fail(self, key: str) -> int:
        now = self._clock()
        state = self._states.get(key)
        if state is None or now - max(state.last_ms, state.locked_until_ms) > (
            self._policy.window_ms
        ):
            state = _State(failures=0, last_ms=now, locked_until_ms=0)
            self._states[key] = state
            if len(self._states) > self._max_keys:
                self._states.popitem(last=False)
        self._states.move_to_end(key)
        state.failures += 1
        state.last_ms = now
        lock = self._policy.lock_ms(state.failures)
        if lock:
            state.locked_until_ms = now + lock
        return lock

    async def reset(self, key: str) -> None:
        self._states.pop(key, None)
