"""One client connection: its reader, heartbeat and session timer, and its socket's writer.

Every task of a connection lives in the connection's own nursery. Anybody
queues encoded frames with ``push``, which never blocks: the frame goes into
the socket's outbox (gateway/transport.py), written with the next tick's
flush or, when the kernel's buffer is full, by the socket's writer. A client
whose backlog is full has stopped reading and is closed with 4005
(protocol/SPEC.md §6, §8): more than ``outbound_queue_frames`` frames, or a push that
would take the queue over ``outbound_queue_bytes``. Replies are bounded the
other way: the reader takes the client's next request only once the queue
has room for a largest reply (``max_reply_bytes``; PULL and HISTORY cut
theirs there), so a client that asks much and reads slowly is simply served
slowly, and one that reads nothing is dropped by the write timeout.
Closing is either immediate (``close``: replaced, slow, session ended,
idle) or after what is queued has been written (``close_after_flush``: an
ERR then 1007).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from sandcat.config import GatewayConfig
from sandcat.errors import SandcatError
from sandcat.gateway.throttle import Pace, Throttle
from sandcat.gateway.transport import ConnectionClosed, WebSocket, WriteTimeout
from sandcat.logs import add_context, open_context
from sandcat.metrics import ServerMetrics
from sandcat.protocol import (
    ClientFrame,
    CloseCode,
    Err,
    ErrorCode,
    FrameError,
    Hello,
    Limits,
    ObjectCount,
    RequestError,
    Session,
    SessionError,
    decode_client,
    encode,
)
from sandcat.store.budgets import Budgets

if TYPE_CHECKING:
    from sandcat.gateway.hub import Hub
    from sandcat.gateway.operations import Operations

log = logging.getLogger(__name__)
#: Connection ids in log lines: unique within the process.
_connection_ids = itertools.count(1)

#: Frames from this size on are decoded in a worker thread: a frame's decode time
#: grows with its maps and arrays (~1 us each), up to ~70 ms for 64 KiB of empty
#: maps; below 8 KiB it stays under ~8 ms, less than the thread hop is worth.
_THREAD_DECODE_BYTES = 8192


@dataclass(frozen=True, slots=True)
class _CloseMarker:
    code: int
    reason: str
    #: Write every frame queued before the close (else only the one being written).
    flush: bool = False


class Connection:
    def __init__(
        self,
        ws: WebSocket,
        *,
        hub: Hub,
        operations: Operations,
        config: GatewayConfig,
        limits: Limits,
        bearer: str | None,
        metrics: ServerMetrics | None = None,
        budgets: Budgets | None = None,
        address: str = "?",
        on_authenticated: Callable[[], None] | None = None,
        decoders: trio.CapacityLimiter | None = None,
    ) -> None:
        self.ws = ws
        self._decoders = decoders
        self._on_authenticated = on_authenticated
        #: The client's address (behind trusted proxies: the one they forwarded).
        self.address = address
        self.user = ""
        self.device = ""
        self.session = ""
        self.expires_at_ms = 0
        self.bearer = bearer
        self.state = Session()
        self._hub = hub
        self._operations = operations
        self._config = config
        self._limits = limits
        self._metrics = metrics or ServerMetrics.create()
        self._frames_out = self._metrics.frames_out.counts
        self._scope = trio.CancelScope()
        self._close: _CloseMarker | None = None
        self._renewed = trio.Event()
        self._throttle = Throttle(
            rate_per_s=config.rate_per_s,
            burst=config.rate_burst,
            strikes=config.abuse_strikes,
            now=trio.current_time(),
        )
        #: Decoding work: each frame's maps and arrays are charged once it is decoded,
        #: and a connection in debt waits it out before its next frame is read.
        self._decoding = Pace(
            rate_per_s=config.decode_objects_per_s,
            burst=config.decode_objects_burst,
            now=trio.current_time(),
        )
        self._decode_wait_s = 0.0
        #: The user's budget shared by all their connections, and tokens leased from it.
        self._budgets = budgets
        self._leased = 0
        self._budget_empty_until = 0.0
        self.id = f"c{next(_connection_ids)}"
        #: The close code the client sent, if it closed first.
        self._peer_code: int | None = None
        #: Inside a run of refused frames (one log line per run, not per frame).
        self._refusing = False

    # -- called from any task ------------------------------------------------------------

    def push(self, data: bytes) -> None:
        if self._close is not None:
            return
        # Every frame is a msgpack fixarray [op, rid, body]: byte 1 is the op,
        # byte 2 is 0 for a push (rid 0) and the start of the rid in a reply.
        self._frames_out[data[1]] += 1
        if self.ws.backlog >= self._config.outbound_queue_frames:
            self.close(CloseCode.SLOW_CONSUMER, "outbound queue full")
        elif data[2] == 0 and self.ws.queued_bytes + len(data) > self._config.outbound_queue_bytes:
            self.close(CloseCode.SLOW_CONSUMER, "outbound queue over its bytes")
        else:
            self.ws.send(data)

    def reply_error(self, rid: int, code: ErrorCode | str, message: str, **extra: int) -> None:
        self._metrics.errors.inc(1, "ws", str(code))
        self.push(encode(Err(rid=rid, code=ErrorCode(code), message=message, **extra)))

    def close(self, code: int, reason: str = "") -> None:
        """Close now, dropping whatever is still queued."""
        if self._close is None:
            self._close = _CloseMarker(code, reason)
        self._scope.cancel()

    def close_after_flush(self, code: int, reason: str) -> None:
        """Close once every frame queued so far has been written."""
        if self._close is None:
            self._close = _CloseMarker(code, reason, flush=True)
        self._scope.cancel()

    def queued(self) -> int:
        """Frames not yet handed to the kernel."""
        return self.ws.backlog

    def start_draining(self) -> None:
        self.state.start_draining()

    def renew(self, expires_at_ms: int) -> None:
        self.expires_at_ms = expires_at_ms
        self._renewed.set()
        self._renewed = trio.Event()

    # -- the connection's tasks ----------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it."""
        with open_context(connection_id=self.id):
            await self._run()

    async def _run(self) -> None:
        self._hub.attach(self)
        started = trio.current_time()
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write)
                    nursery.start_soon(self._heartbeat)
                    if await self._authenticate():
                        add_context(user_id=self.user, device=self.device)
                        log.info(
                            "websocket connected: user %s device %s from %s",
                            self.user,
                            self.device,
                            self.address,
                            extra={"event": "ws_connect", "client": self.address},
                        )
                        nursery.start_soon(self._expiry)
                        await self._read()
                    if self._close is None:
                        nursery.cancel_scope.cancel()
        finally:
            marker = self._close or _CloseMarker(CloseCode.GOING_AWAY, "server shutting down")
            try:
                await self.ws.aclose(
                    marker.code,
                    marker.reason,
                    keep_queued=marker.flush,
                    timeout_s=self._config.send_timeout_s,
                )
            finally:
                self._hub.unregister(self)
                if self.user:
                    self._operations.left(self)
                self._log_close(marker, trio.current_time() - started)

    def _log_close(self, marker: _CloseMarker, seconds: float) -> None:
        by_client = self._close is None and self._peer_code is not None
        code = self._peer_code if by_client else marker.code
        self._metrics.ws_closes.inc(1, str(code), "client" if by_client else "server")
        log.info(
            "websocket closed by the %s: code %s%s after %.1f s, user %s from %s",
            "client" if by_client else "server",
            code,
            f" ({marker.reason})" if marker.reason and not by_client else "",
            seconds,
            self.user or "-",
            self.address,
            extra={
                "event": "ws_close",
                "close_code": code,
                "closed_by": "client" if by_client else "server",
                "duration_s": round(seconds, 3),
                "client": self.address,
            },
        )

    async def _write(self) -> None:
        """Be the socket's writer while the kernel's buffer is full."""
        try:
            await self.ws.writer(self._config.send_timeout_s)
        except WriteTimeout:
            self.close(CloseCode.SLOW_CONSUMER, "write timed out")

    async def _heartbeat(self) -> None:
        while True:
            await trio.sleep(self._config.heartbeat_s)
            with trio.move_on_after(self._config.idle_timeout_s) as waiting:
                try:
                    await self.ws.ping()
                except ConnectionClosed:
                    self._scope.cancel()
                    return
            if waiting.cancelled_caught:
                self.close(CloseCode.IDLE_TIMEOUT, "no pong within idle_timeout")
                return

    async def _expiry(self) -> None:
        """Close 4007 once the access token has expired and no AUTH renewed it."""
        grace_ms = self._config.reauth_grace_s * 1000
        while True:
            left_s = (self.expires_at_ms + grace_ms - time.time() * 1000) / 1000
            if left_s <= 0:
                self.close(CloseCode.SESSION_ENDED, "access token expired; no AUTH arrived")
                return
            with trio.move_on_after(left_s):
                await self._renewed.wait()

    async def _next_frame(self) -> object | None:
        """The next decoded frame; None once the connection is over for reading."""
        while True:
            if self._decode_wait_s > 0:
                await trio.sleep(self._decode_wait_s)
            try:
                message = await self.ws.receive()
            except ConnectionClosed as exc:
                self._peer_code = exc.code
                return None
            if isinstance(message, str):
                self.close_after_flush(CloseCode.UNSUPPORTED_DATA, "text messages are not allowed")
                return None
            try:
                frame = await self._decode(message)
                self._metrics.frames_in.counts[frame.op] += 1
            except FrameError as exc:
                if exc.rid is not None:
                    self.reply_error(exc.rid, exc.code, str(exc))
                self.close_after_flush(exc.close_code, str(exc)[:120])
                return None
            except RequestError as exc:
                if not self._throttled(exc.rid):
                    self.reply_error(exc.rid, exc.code, str(exc))
            else:
                if not self._throttled(frame.rid) and not await self._over_budget(frame.rid):
                    self._refusing = False
                    return frame
            if self._close is not None:
                return None

    async def _decode(self, message: bytes) -> ClientFrame:
        """``decode_client``, charging the frame's maps and arrays to the decode pace.

        A large frame is decoded in a worker thread, one at a time per process
        (``decoders``): it may take tens of milliseconds, during which the other
        connections are served.
        """
        decoded = ObjectCount()
        try:
            if len(message) < _THREAD_DECODE_BYTES or self._decoders is None:
                return decode_client(message, self._limits, decoded)
            return await trio.to_thread.run_sync(
                decode_client, message, self._limits, decoded, limiter=self._decoders
            )
        finally:
            self._decode_wait_s = self._decoding.charge(decoded.objects, trio.current_time())

    def _throttled(self, rid: int) -> bool:
        """Apply the rate limit to one request; True if it was refused."""
        verdict = self._throttle.admit(trio.current_time())
        if verdict.allowed:
            return False
        self._log_refusal("connection")
        if verdict.abusive:
            log.warning(
                "closing the connection of %s (user %s) with 4004: it ignored the rate limit",
                self.address,
                self.user or "-",
            )
            self.close_after_flush(CloseCode.ABUSE, "rate limit ignored")
        else:
            self.reply_error(
                rid,
                ErrorCode.RATE_LIMITED,
                "too many requests; slow down",
                retry_after_ms=verdict.retry_after_ms,
            )
        return True

    async def _over_budget(self, rid: int) -> bool:
        """Spend a token of the user's shared budget (``store.budgets``); True, with
        ERR ``rate_limited``, if it is empty."""
        if self._budgets is None or not self.user:
            return False
        if self._leased == 0:
            now = trio.current_time()
            # After a refusal, refuse locally until the bucket can have a token again:
            # a client that keeps sending costs no round trip per frame.
            wait_ms = math.ceil((self._budget_empty_until - now) * 1000)
            if wait_ms <= 0:
                lease = await self._budgets.lease(self.user, self._config.user_lease)
                self._leased = lease.granted
                wait_ms = lease.retry_after_ms
                self._budget_empty_until = now + wait_ms / 1000
            if not self._leased:
                self._log_refusal("account")
                self.reply_error(
                    rid,
                    ErrorCode.RATE_LIMITED,
                    "too many requests from this account; slow down",
                    retry_after_ms=max(1, wait_ms),
                )
                return True
        self._leased -= 1
        return False

    def _log_refusal(self, limit: str) -> None:
        """One INFO line for the first refused frame of a run."""
        if not self._refusing:
            self._refusing = True
            log.info(
                "frames refused (rate limit of the %s): user %s from %s",
                limit,
                self.user or "-",
                self.address,
                extra={"event": "rate_limited", "transport": "ws", "limit": limit},
            )

    def _admit(self, frame: object) -> bool:
        """Check the frame against the session state machine; False if refused."""
        try:
            self.state.receive(frame)  # type: ignore[arg-type]
        except SessionError as exc:
            rid = getattr(frame, "rid", 0)
            self.reply_error(rid, exc.code, str(exc))
            if exc.close_code is not None:
                self.close_after_flush(exc.close_code, str(exc)[:120])
                return False
            return False
        return True

    async def _authenticate(self) -> bool:
        with trio.move_on_after(self._config.auth_timeout_s):
            frame = await self._next_frame()
            if frame is None or not self._admit(frame):
                return False
            assert isinstance(frame, Hello)
            try:
                await self._operations.hello(self, frame)
            except SandcatError as exc:
                self.state.hello_rejected()
                retry = getattr(exc, "retry_after_ms", None)
                extra = {} if retry is None else {"retry_after_ms": retry}
                self.reply_error(frame.rid, exc.code, exc.message, **extra)
                if exc.code == ErrorCode.RATE_LIMITED:
                    self.close_after_flush(CloseCode.ABUSE, exc.message[:120])
                else:
                    self.close_after_flush(CloseCode.UNAUTHENTICATED, "authentication failed")
                return False
            self.state.hello_accepted()
            if self._on_authenticated is not None:
                self._on_authenticated()
            return True
        self.close(CloseCode.AUTH_TIMEOUT, "no HELLO within auth_timeout")
        return False

    async def _read(self) -> None:
        room = self._config.outbound_queue_bytes - self._config.max_reply_bytes
        while True:
            # Read on only when a largest reply fits in the queue (see the module doc).
            await self.ws.wait_queued_at_most(room)
            frame = await self._next_frame()
            if frame is None:
                return
            if not self._admit(frame):
                if self._close is not None:
                    return
                continue
            rid: int = getattr(frame, "rid", 0)
            try:
                await self._operations.handle(self, frame)
            except SandcatError as exc:
                extra = {}
                retry = getattr(exc, "retry_after_ms", None)
                if retry is not None:
                    extra["retry_after_ms"] = retry
                self.reply_error(rid, exc.code, exc.message, **extra)
            except Exception:
                # A bug, not the client's fault: this connection ends with an
                # ERR internal and 1011; everyone else keeps being served.
                log.exception(
                    "%s from user %s device %s at %s failed",
                    type(frame).__name__,
                    self.user,
                    self.device,
                    self.address,
                )
                self.reply_error(rid, ErrorCode.INTERNAL, "internal error")
                self.close_after_flush(CloseCode.INTERNAL_ERROR, "internal error")
                return
