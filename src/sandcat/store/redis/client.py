"""One Redis connection for shared state: Lua scripts with a deadline, errors translated.

Everything the shared-state stores do is one server-side script per call,
so each call is atomic and one round trip. Keys live under a prefix (one
Redis can serve several deployments). Driver failures and deadlines become
``StoreUnavailable`` here; callers decide what losing Redis means for them
(nothing in Redis is the only copy of anything: README.md, "Run a cluster").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import coredis
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from sandcat.bus.redis import _sole_error as sole_error
from sandcat.errors import BackendFailure, StoreUnavailable, ignore_failure

_FAILURES = (RedisError, OSError, trio.TooSlowError)


class RedisState:
    def __init__(
        self,
        client: coredis.Redis[bytes],
        *,
        prefix: str,
        timeout_s: float,
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self.prefix = prefix
        self._client = client
        self._timeout_s = timeout_s
        self._on_failure = on_failure

    async def script(
        self, source: str, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> Any:
        """Run a Lua script on ``keys`` (prefixed here) within the deadline."""
        try:
            with trio.fail_after(self._timeout_s):
                return await self._client.eval(
                    source, keys=[self.prefix + key for key in keys], args=list(args)
                )
        except _FAILURES as exc:
            timeout = isinstance(exc, trio.TooSlowError)
            self._on_failure("redis", "timeout" if timeout else "error")
            reason = "deadline passed" if timeout else repr(exc)
            raise StoreUnavailable(f"redis failed: {reason}") from exc


@asynccontextmanager
async def open_redis_client(url: str, *, timeout_s: float) -> AsyncIterator[coredis.Redis[bytes]]:
    """A client of the Redis at ``url`` (checked reachable), closed on exit.

    The server opens one and shares it: shared state, presence and call books,
    and the broadcasts' publishes (each subscription opens its own connection).
    """
    try:
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            url, connect_timeout=timeout_s, retry_policy=NoRetryPolicy()
        )
    except ValueError as exc:
        raise StoreUnavailable(f"bad redis url: {exc}") from exc
    ready = False
    try:
        with sole_error():
            async with client:
                with trio.fail_after(timeout_s):
                    await client.ping()
                ready = True
                yield client
    except _FAILURES as exc:
        if ready:
            raise
        raise StoreUnavailable(f"redis unreachable: {exc!r}") from exc


@asynccontextmanager
async def open_redis_state(
    url: str, *, timeout_s: float, prefix: str = "sandcat:"
) -> AsyncIterator[RedisState]:
    """Shared state in the Redis at ``url`` (checked reachable), closed on exit."""
    async with open_redis_client(url, timeout_s=timeout_s) as client:
        yield RedisState(client, prefix=prefix, timeout_s=timeout_s)
