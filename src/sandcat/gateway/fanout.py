"""Session ends and READ_STATE pushes for every instance, over the broadcast.

The hub applies each event to its own sockets at once and hands it here to
share; every other instance applies it to its sockets when it arrives. An
event is a msgpack map naming the instance it comes from (an instance skips
its own), and is checked field by field on arrival: anything else is logged
and dropped, never applied. Sharing never blocks the caller: events wait in
a bounded queue for the publisher task; when the queue is full, or Redis
refuses a publish, the event is dropped and counted (a session end is still
enforced by token revocation at the next reauthentication).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import msgpack
import trio

from sandcat.bus.broadcast import Broadcast, BroadcastUnavailable
from sandcat.domain.revocations import Revocations
from sandcat.errors import Unavailable
from sandcat.protocol import CloseCode

log = logging.getLogger(__name__)

#: Events waiting to be published before new ones are dropped.
_QUEUE = 1024
#: Largest event accepted from the broadcast (a READ_STATE to every group member fits).
MAX_EVENT_BYTES = 1 << 20
#: A session end may only close with an application close code (RFC 6455 §7.4.2)
#: and a reason that fits a close frame.
_APP_CLOSE_CODES = (4000, 4999)
_MAX_CLOSE_REASON_BYTES = 123


class Target(Protocol):
    """What a fan-out event does on an instance (the hub)."""

    def end_sessions(
        self, user: str, *, session: str | None, code: int, reason: str, local_only: bool
    ) -> None: ...

    def push_each(
        self, targets: list[tuple[str, str | None]], frame: bytes, *, local_only: bool
    ) -> None: ...


class Fanout:
    def __init__(
        self, broadcast: Broadcast, *, instance: str, revocations: Revocations | None = None
    ) -> None:
        self.instance = instance
        self.dropped = 0
        self._broadcast = broadcast
        self._send, self._receive = trio.open_memory_channel[bytes](_QUEUE)
        #: Session ends (4007) also go to the revocation log, the reliable path.
        self._revocations = revocations
        self._revoke_send, self._revoke_receive = trio.open_memory_channel[tuple[str, str | None]](
            _QUEUE
        )

    def end_sessions(self, user: str, *, session: str | None, code: int, reason: str) -> None:
        self._share({"t": "end", "u": user, "s": session, "c": code, "r": reason})
        if self._revocations is not None and code == CloseCode.SESSION_ENDED:
            try:
                self._revoke_send.send_nowait((user, session))
            except trio.WouldBlock:
                self.dropped += 1
                log.warning("revocation queue full: the database still refuses the session")

    def push_each(self, targets: list[tuple[str, str | None]], frame: bytes) -> None:
        self._share({"t": "push", "to": [list(target) for target in targets], "f": frame})

    def _share(self, event: dict[str, object]) -> None:
        event["i"] = self.instance
        try:
            self._send.send_nowait(msgpack.packb(event, use_bin_type=True))
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("fan-out queue full: event dropped")

    async def run(
        self, target: Target, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and publish until cancelled; started once listening."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._broadcast.listen, lambda data: self.apply(target, data))
            if self._revocations is not None:
                nursery.start_soon(self._append_revocations, self._revocations)
            task_status.started()
            async for data in self._receive:
                try:
                    await self._broadcast.publish(data)
                except BroadcastUnavailable as exc:
                    self.dropped += 1
                    log.warning("fan-out event dropped: %s", exc.message)

    async def _append_revocations(self, revocations: Revocations) -> None:
        async for user, session in self._revoke_receive:
            try:
                await revocations.revoke(user, session)
            except Unavailable as exc:
                # HELLO, AUTH and HTTP still check the database; the pub/sub event
                # may still have closed the other instances' sockets.
                self.dropped += 1
                log.warning("revocation not logged: %s", exc.message)

    def apply(self, target: Target, data: bytes) -> None:
        """Apply an event that arrived from the broadcast (unless it is this instance's)."""
        event = _decode(data)
        if event is None:
            log.warning("fan-out: malformed event of %d bytes dropped", len(data))
        elif event.instance == self.instance:
            return
        elif isinstance(event, _End):
            target.end_sessions(
                event.user,
                session=event.session,
                code=event.code,
                reason=event.reason,
                local_only=True,
            )
        else:
            target.push_each(event.targets, event.frame, local_only=True)


@dataclass(frozen=True, slots=True)
class _End:
    instance: str
    user: str
    session: str | None
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Push:
    instance: str
    targets: list[tuple[str, str | None]]
    frame: bytes


def _decode(data: bytes) -> _End | _Push | None:
    if len(data) > MAX_EVENT_BYTES:
        return None
    try:
        event = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(event, dict) or not isinstance(instance := event.get("i"), str):
        return None
    match event.get("t"):
        case "end":
            user, session, code, reason = (event.get(k) for k in ("u", "s", "c", "r"))
            if (
                isinstance(user, str)
                and (session is None or isinstance(session, str))
                and type(code) is int
                and _APP_CLOSE_CODES[0] <= code <= _APP_CLOSE_CODES[1]
                and isinstance(reason, str)
                and len(reason.encode()) <= _MAX_CLOSE_REASON_BYTES
            ):
                return _End(instance, user, session, code, reason)
        case "push":
            frame, targets = event.get("f"), _targets(event.get("to"))
            if isinstance(frame, bytes) and targets is not None:
                return _Push(instance, targets, frame)
    return None


def _targets(value: object) -> list[tuple[str, str | None]] | None:
    if not isinstance(value, list):
        return None
    targets: list[tuple[str, str | None]] = []
    for target in value:
        if not (isinstance(target, list) and len(target) == 2 and isinstance(target[0], str)):
            return None
        user, device = target
        if device is not None and not isinstance(device, str):
            return None
        targets.append((user, device))
    return targets
