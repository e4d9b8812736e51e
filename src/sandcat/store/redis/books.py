"""One coredis client for the presence and call books, and the error boundary.

Every command has a deadline; coredis errors, socket errors and deadlines
become ``StoreUnavailable`` here. The scripts touch several
keys of one user or one call, so the books need a single Redis (or Valkey)
server, not a sharded Redis Cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import coredis
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from sandcat.bus.redis import _sole_error
from sandcat.errors import BackendFailure, StoreUnavailable, ignore_failure
from sandcat.store.redis.calls import RedisCallBook
from sandcat.store.redis.connections import RedisConnectionBook
from sandcat.store.redis.presence import RedisPresenceBook
from sandcat.store.redis.routes import RedisRouteBook

_FAILURES = (RedisError, OSError, trio.TooSlowError)


class Runner:
    """Runs scripts with a deadline, translating failures."""

    def __init__(
        self,
        client: coredis.Redis[bytes],
        *,
        timeout_s: float,
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self.client = client
        self._timeout_s = timeout_s
        self._on_failure = on_failure

    def script(self, source: str) -> Any:
        return self.client.register_script(source)

    async def run(self, request: Awaitable[Any]) -> Any:
        try:
            with trio.fail_after(self._timeout_s):
                return await request
        except _FAILURES as exc:
            timeout = isinstance(exc, trio.TooSlowError)
            self._on_failure("redis", "timeout" if timeout else "error")
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RedisBooks:
    presence: RedisPresenceBook
    calls: RedisCallBook
    routes: RedisRouteBook
    connections: RedisConnectionBook


def redis_books(
    client: coredis.Redis[bytes],
    *,
    prefix: str,
    timeout_s: float,
    on_failure: BackendFailure = ignore_failure,
) -> RedisBooks:
    """The books over an open client (the server's one), keys under ``prefix``."""
    runner = Runner(client, timeout_s=timeout_s, on_failure=on_failure)
    return RedisBooks(
        presence=RedisPresenceBook(runner, prefix=prefix),
        calls=RedisCallBook(runner, prefix=prefix),
        routes=RedisRouteBook(runner, prefix=prefix),
        connections=RedisConnectionBook(runner, prefix=prefix),
    )


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except _FAILURES as exc:
        raise StoreUnavailable(f"redis unreachable: {type(exc).__name__}: {exc}") from exc


@asynccontextmanager
async def open_redis_books(url: str, *, prefix: str, timeout_s: float) -> AsyncIterator[RedisBooks]:
    """Both books over the Redis at ``url``, keys under ``prefix``; checked reachable."""
    try:
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            url, connect_timeout=timeout_s, retry_policy=NoRetryPolicy()
        )
    except ValueError as exc:
        raise StoreUnavailable(f"bad redis url: {exc}") from exc
    with _unavailable(), _sole_error():
        async with client:
            await Runner(client, timeout_s=timeout_s).run(client.ping())
            yield redis_books(client, prefix=prefix, timeout_s=timeout_s)
