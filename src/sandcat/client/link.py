"""The link: one connection at a time, reconnected until the session ends.

`Link.run` connects, says HELLO (renewing the access token once if the
server refuses it), lets the session recover (SYNC since the last version,
then PULL the holes), and only then offers the connection to requests, so
resends go out after the backfill. While connected it PINGs to detect a dead
server and presents a fresh token with AUTH before the old one expires.

When the connection is lost it reconnects with exponential backoff and
jitter, or after the delay a GOAWAY named, up to ``reconnect_attempts``
consecutive failures. Some closes end the session instead (`FINAL_CLOSES`):
above all 4001, because the device's slot was taken by a newer connection,
and reconnecting would take it back and start a fight between the two.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable

import httpx
import trio

from sandcat.protocol import Auth, CloseCode, ErrorCode, GoAway, Hello, Ping, ServerFrame
from sandcat.protocol import Sync as SyncFrame

from .connection import Connection, ConnectionLost
from .credentials import Credentials
from .errors import SandcatClientError, SessionClosed
from .options import SessionOptions, SessionStatistics
from .replies import SyncResult

__all__ = ["FINAL_CLOSES", "Link"]

log = logging.getLogger(__name__)

#: Close codes after which the session ends rather than reconnects.
FINAL_CLOSES = frozenset(
    {
        CloseCode.REPLACED,  # another connection of this device took over
        CloseCode.ABUSE,  # reconnecting would only prolong the abuse
        CloseCode.SESSION_ENDED,  # logged out, revoked, disabled
        CloseCode.UNSUPPORTED_DATA,  # the SDK broke the protocol: a bug, not weather
        CloseCode.INVALID_PAYLOAD,
        CloseCode.MESSAGE_TOO_BIG,
    }
)


def _auth(rid: int, *, token: str) -> Auth:
    return Auth(rid=rid, token=token)


#: Least time between two AUTH frames on one connection.
_MIN_AUTH_INTERVAL_S = 1.0

Recover = Callable[[Connection, SyncResult, bool], Awaitable[None]]


class Link:
    def __init__(
        self,
        ws_url: str,
        credentials: Credentials,
        *,
        device: str,
        platform: str,
        options: SessionOptions,
        stats: SessionStatistics,
        on_push: Callable[[ServerFrame], None],
        recover: Recover,
        on_change: Callable[[], None],
    ) -> None:
        self._ws_url = ws_url
        self._credentials = credentials
        self._device = device
        self._platform = platform
        self._options = options
        self._stats = stats
        self._on_push = on_push
        self._recover = recover
        self._on_change = on_change
        self._conn: Connection | None = None
        self._changed = trio.Event()
        self._version: int | None = None
        self._renew = False
        self._reconnect_after_s: float | None = None
        self.user = ""
        self.closed: SessionClosed | trio.ClosedResourceError | None = None

    def current(self) -> Connection | None:
        """The connection requests may use now, or None while (re)connecting."""
        conn = self._conn
        return conn if conn is not None and conn.lost is None else None

    async def connection(self, *, sending: bool = False) -> Connection:
        """Wait for a usable connection (for ``sending``, one that is not draining)."""
        while True:
            if self.closed is not None:
                raise self.closed
            changed = self._changed
            conn = self.current()
            if conn is not None and not (sending and conn.draining):
                return conn
            await changed.wait()

    async def aclose(self) -> None:
        if self.closed is None:
            self.closed = trio.ClosedResourceError("the session was closed")
        if self._conn is not None:
            await self._conn.aclose(1000, "client closing")
        self._signal()

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        """Keep a connection until the session ends; ``started`` once the first is ready."""
        failures = 0
        started = False

        def ready() -> None:
            nonlocal failures, started
            failures = 0
            if not started:
                started = True
                task_status.started()

        try:
            while True:
                lost = await self._connect(ready)
                if self.closed is not None:
                    return
                self._stats.close_codes.append(lost.code)
                if lost.code in FINAL_CLOSES:
                    raise SessionClosed(lost.code, lost.reason)
                failures += 1
                if failures > self._options.reconnect_attempts:
                    raise SessionClosed(lost.code, f"gave up reconnecting: {lost.reason}")
                await trio.sleep(self._delay(failures))
        except SessionClosed as exc:
            log.info("session over: %s", exc)
            self.closed = self.closed or exc
            self._signal()
            if not started:
                raise

    async def _connect(self, ready: Callable[[], None]) -> ConnectionLost:
        final: SessionClosed | None = None
        conn: Connection | None = None
        try:
            # Nothing may raise out of this nursery (it would come out wrapped
            # in an ExceptionGroup); failures are noted and raised after it.
            async with trio.open_nursery() as nursery:
                try:
                    conn = await Connection.open(
                        self._ws_url,
                        nursery,
                        on_push=self._push,
                        timeout_s=self._options.request_timeout_s,
                        tls=self._options.tls,
                    )
                except ConnectionLost as exc:
                    return exc
                nursery.start_soon(self._read, conn, nursery.cancel_scope)
                try:
                    await self._start(conn, nursery, ready)
                except (ConnectionLost, trio.TooSlowError, SessionClosed) as exc:
                    final = exc if isinstance(exc, SessionClosed) else None
                    conn.abandon(f"while starting the session: {exc}")
                    nursery.cancel_scope.cancel()
        finally:
            self._conn = None
            self._signal()
            if conn is not None:
                await conn.close_transport()
        if final is not None:
            raise final
        assert conn is not None
        assert conn.lost is not None
        return conn.lost

    async def _start(
        self, conn: Connection, nursery: trio.Nursery, ready: Callable[[], None]
    ) -> None:
        await self._hello(conn)
        sync = await conn.call(lambda rid: SyncFrame(rid=rid, since=self._version))
        result = SyncResult.from_body(sync.body)
        await self._recover(conn, result, self._version is None)
        self._version = result.version
        self._stats.connects += 1
        self._conn = conn
        self._signal()
        ready()
        nursery.start_soon(self._keep_alive, conn, nursery.cancel_scope)
        nursery.start_soon(self._keep_authenticated, conn)

    async def _hello(self, conn: Connection) -> None:
        try:
            token = await self._credentials.access_token(renew=self._renew)
        except (SandcatClientError, httpx.HTTPError) as exc:
            raise SessionClosed(None, f"cannot get an access token: {exc}") from exc
        try:
            ok = await conn.call(
                lambda rid: Hello(
                    rid=rid,
                    token=token,
                    device=self._device,
                    platform=self._platform,
                    client=self._options.client,
                )
            )
        except SandcatClientError as exc:
            if exc.code == ErrorCode.UNAUTHORIZED and not self._renew:
                self._renew = True  # the next attempt renews the token first
                raise ConnectionLost(None, "access token refused; renewing it") from exc
            raise SessionClosed(None, f"HELLO refused: {exc}") from exc
        self._renew = False
        self.user = str(ok.body["user"])
        max_frame_bytes = ok.body.get("max_frame_bytes")
        if isinstance(max_frame_bytes, int):
            conn.max_frame_bytes = max_frame_bytes
        heartbeat_ms = ok.body.get("heartbeat_ms")
        if self._options.ping_interval_s is None and isinstance(heartbeat_ms, int):
            conn.ping_interval_s = heartbeat_ms / 1000

    async def _read(self, conn: Connection, scope: trio.CancelScope) -> None:
        lost = await conn.run()
        log.debug("connection closed: %s", lost)
        if conn.closing:
            # This side is closing: the handshake needs the WebSocket's reader.
            await conn.closed.wait()
        scope.cancel()

    async def _keep_alive(self, conn: Connection, scope: trio.CancelScope) -> None:
        interval_s = self._options.ping_interval_s or conn.ping_interval_s
        while True:
            await trio.sleep(interval_s)
            try:
                await conn.call(lambda rid: Ping(rid=rid))
            except trio.TooSlowError:
                conn.abandon("no reply to PING")
                scope.cancel()
                return
            except ConnectionLost:
                return

    async def _keep_authenticated(self, conn: Connection) -> None:
        while (renew_at := self._credentials.renew_at) is not None:
            # At most one AUTH per interval, even if the renewal is overdue.
            await trio.sleep(max(_MIN_AUTH_INTERVAL_S, renew_at - time.time()))
            try:
                token = await self._credentials.access_token()
                await conn.call(functools.partial(_auth, token=token))
                self._stats.auths += 1
            except (SandcatClientError, httpx.HTTPError, trio.TooSlowError) as exc:
                # The server closes the session (4007) once the grace is over;
                # a reconnect then tries again with HELLO.
                log.warning("could not renew the access token: %s", exc)
                return
            except ConnectionLost:
                return

    def _push(self, frame: ServerFrame) -> None:
        if isinstance(frame, GoAway):
            self._reconnect_after_s = frame.reconnect_after_ms / 1000
            self._signal()  # sends now wait for the next connection
        self._on_push(frame)

    def _delay(self, failures: int) -> float:
        if self._reconnect_after_s is not None:
            delay, self._reconnect_after_s = self._reconnect_after_s, None
            return delay
        options = self._options
        ceiling = min(options.backoff_max_s, options.backoff_min_s * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        self._on_change()
