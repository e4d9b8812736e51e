"""Startup that rides out backends which are slow or briefly down, like a production server.

``sandcat serve`` opens PostgreSQL (or SQLite), Redis, Kafka (topic metadata and
watermarks), MongoDB and S3 before it listens. When any of them fails with
``Unavailable`` (unreachable, or slower than its deadline: an overloaded
machine, a broker restarting), the whole start is unwound and tried again after
a bounded, jittered backoff, with one log line per failed attempt naming the
backend and the error, until ``server.startup_timeout_s`` has passed since the
first attempt; only then does the command give up (exit 1, one line). The
deadline also bounds an attempt that hangs. Anything else (bad configuration, a
port in use, a SQLite database another server holds) is not retried. While it
waits nothing listens, so a health check sees the connection refused; /healthz
answers 200 once the start is complete.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from sandcat.bus.broadcast import BroadcastUnavailable
from sandcat.bus.bus import BusUnavailable
from sandcat.errors import LocalStoreUnavailable, StoreUnavailable, Unavailable

log = logging.getLogger(__name__)

#: The first retry waits about this long; each further one twice as long ...
FIRST_BACKOFF_S = 0.5
#: ... up to this.
MAX_BACKOFF_S = 10.0

#: A word in an ``Unavailable`` message and the backend it names.
_BACKEND_WORDS = (
    ("postgres", "postgresql"),
    ("redis", "redis"),
    ("kafka", "kafka"),
    ("mongodb", "mongodb"),
    ("s3 ", "s3"),
    ("sqlite", "sqlite"),
    ("blob", "blob storage"),
)


class StartupGaveUp(Exception):
    """Startup did not succeed within ``server.startup_timeout_s``."""

    def __init__(
        self, failure: Unavailable | None, *, attempts: int, elapsed_s: float, timeout_s: float
    ) -> None:
        #: The last attempt's error (None: the first attempt was still running at the deadline).
        self.failure = failure
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.timeout_s = timeout_s
        what = str(failure) if failure is not None else "the first attempt did not finish"
        super().__init__(
            f"{what} (gave up after {attempts} attempt{'s' if attempts != 1 else ''} in "
            f"{elapsed_s:.1f} s; server.startup_timeout_s = {timeout_s:g})"
        )


def backend_of(exc: Unavailable) -> str:
    """The backend an ``Unavailable`` raised at startup is about, for the log line."""
    text = f"{exc} ".lower()
    for word, backend in _BACKEND_WORDS:
        if word in text:
            return backend
    if isinstance(exc, BroadcastUnavailable):
        return "redis"
    if isinstance(exc, BusUnavailable):
        return "bus"
    if isinstance(exc, StoreUnavailable):
        return "storage"
    return "backend"


def unavailable_in(exc: BaseException) -> Unavailable | None:
    """The ``Unavailable`` that ``exc`` is (through exception groups, as a nursery
    raises it), if every error in it is one; else None (not a backend outage). A
    local store that cannot be opened (``LocalStoreUnavailable``) is not one."""
    if isinstance(exc, LocalStoreUnavailable):
        return None
    if isinstance(exc, Unavailable):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(
            lambda e: isinstance(e, Unavailable) and not isinstance(e, LocalStoreUnavailable)
        )
        if matched is not None and rest is None:
            leaf: BaseException = matched
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            assert isinstance(leaf, Unavailable)
            return leaf
    return None


def backoff_s(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): doubling from
    ``FIRST_BACKOFF_S`` up to ``MAX_BACKOFF_S``, then a random half to all of it
    (instances restarted together do not retry in step)."""
    ceiling = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2.0 ** min(attempt - 1, 30))
    return ceiling * (0.5 + rand() / 2)


async def start_with_retry(
    nursery: trio.Nursery,
    start: Callable[..., Awaitable[Any]],
    *,
    timeout_s: float,
    rand: Callable[[], float] = random.random,
) -> Any:
    """``nursery.start(start)``, tried again while it fails with ``Unavailable``
    until ``timeout_s`` has passed (0: one attempt, no deadline); the started
    value, or ``StartupGaveUp``."""
    began = trio.current_time()
    deadline = began + timeout_s if timeout_s > 0 else float("inf")
    attempt = 0
    failure: Unavailable | None = None
    while True:
        attempt += 1
        with trio.CancelScope(deadline=deadline):
            try:
                return await nursery.start(start)
            except (Unavailable, BaseExceptionGroup) as exc:
                failure = unavailable_in(exc)
                if failure is None:
                    raise
        # Here: this attempt failed with Unavailable, or the deadline cancelled it.
        now = trio.current_time()
        delay = backoff_s(attempt, rand)
        if timeout_s <= 0 or now >= deadline:
            raise StartupGaveUp(
                failure, attempts=attempt, elapsed_s=now - began, timeout_s=timeout_s
            ) from failure
        assert failure is not None
        log.warning(
            "startup attempt %d failed: %s unavailable: %s; trying again in %.1f s "
            "(giving up in %.0f s, server.startup_timeout_s)",
            attempt,
            backend_of(failure),
            failure,
            min(delay, deadline - now),
            deadline - now,
        )
        await trio.sleep(min(delay, deadline - now))
