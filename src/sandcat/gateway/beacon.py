"""What this instance tells every other one, over the broadcast: signals and session events.

Two senders share one bounded-queue publisher (``_Outbound``). The
``Beacon`` carries typing, call events and presence changes (its own
channel, ``<redis_channel>.signals``): it delivers to this instance's sockets
at once and shares. The ``Fanout`` carries session ends and READ_STATE
pushes (``<redis_channel>``): the hub applies each to its own sockets and
hands it here to share. In embedded mode there is no broadcast and local
delivery is all there is.

Nothing is stored and nothing blocks the caller: events wait in a bounded
queue for the publisher task and are dropped (counted, logged) when it is
full or Redis refuses them — a lost typing indicator expires on its own, a
lost presence change is corrected by the next snapshot, call signalling
clients retry or time out, and a session end is still enforced by token
revocation at the next reauthentication (and, for 4007, by the revocation
log, the reliable path).

Events are msgpack maps naming the instance they come from (an instance
skips its own), checked field by field on arrival: anything else is logged
and dropped, never applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import msgpack
import trio

from sandcat.bus.broadcast import Broadcast, BroadcastUnavailable
from sandcat.errors import Unavailable
from sandcat.pipeline.outlet import Outlet
from sandcat.protocol import CloseCode, is_valid_id
from sandcat.store.presence import Seen
from sandcat.store.revocations import Revocations

log = logging.getLogger(__name__)

#: Largest event accepted from the broadcast (a presence change to 10,000 friends,
#: a READ_STATE to every group member fit).
MAX_EVENT_BYTES = 1 << 20
#: Signals waiting to be published before new ones are dropped.
_SIGNAL_QUEUE = 4096
#: Session events (and revocations) waiting before new ones are dropped.
_FANOUT_QUEUE = 1024
_SEEN_STATES = ("online", "away", "busy", "offline")
#: A session end may only close with an application close code (RFC 6455 §7.4.2)
#: and a reason that fits a close frame.
_APP_CLOSE_CODES = (4000, 4999)
_MAX_CLOSE_REASON_BYTES = 123


class _Outbound:
    """A bounded queue of events for the broadcast, and the task that publishes them."""

    def __init__(
        self, broadcast: Broadcast | None, *, instance: str, capacity: int, name: str
    ) -> None:
        self.instance = instance
        self.dropped = 0
        self._broadcast = broadcast
        self._name = name
        self._send, self._receive = trio.open_memory_channel[bytes](capacity)

    def share(self, event: dict[str, object]) -> None:
        """Queue ``event`` for every other instance (nothing without a broadcast)."""
        if self._broadcast is None:
            return
        event["i"] = self.instance
        try:
            self._send.send_nowait(msgpack.packb(event, use_bin_type=True))
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("%s queue full: event dropped", self._name)

    async def run(
        self,
        apply: Callable[[bytes], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen (``apply`` each event) and publish until cancelled; started once
        listening (at once, and returns, without a broadcast)."""
        if self._broadcast is None:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            await nursery.start(self._broadcast.listen, apply)
            task_status.started()
            async for data in self._receive:
                try:
                    await self._broadcast.publish(data)
                except BroadcastUnavailable as exc:
                    self.dropped += 1
                    log.warning("%s event dropped: %s", self._name, exc.message)


def _envelope(data: bytes) -> tuple[str, dict[Any, Any]] | None:
    """The sending instance and the event map, or None for anything else."""
    if len(data) > MAX_EVENT_BYTES:
        return None
    try:
        event = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(event, dict) or not isinstance(instance := event.get("i"), str):
        return None
    return instance, event


# -- signals: typing, calls, presence ---------------------------------------------------

#: A recipient: (user, only this device or None, every device but this one or None).
Target = tuple[str, str | None, str | None]
#: Called with (subject, how they appear, recipients) for every presence change.
PresenceSink = Callable[[str, Seen, list[str]], None]


class Outlets(Protocol):
    def outlets(self, user: str) -> Iterable[Outlet]: ...


class Beacon:
    def __init__(self, hub: Outlets, broadcast: Broadcast | None, *, instance: str) -> None:
        self.instance = instance
        self._hub = hub
        self._out = _Outbound(broadcast, instance=instance, capacity=_SIGNAL_QUEUE, name="signal")
        self.on_presence: PresenceSink | None = None

    @property
    def dropped(self) -> int:
        """Events not shared (queue full, or refused by the broadcast)."""
        return self._out.dropped

    # -- sending ------------------------------------------------------------------------

    def push(self, targets: list[Target], frame: bytes) -> None:
        """Push an encoded frame to the targets' devices here and on every other instance."""
        self._deliver(targets, frame)
        self._out.share({"t": "f", "to": [list(target) for target in targets], "f": frame})

    def presence(self, subject: str, seen: Seen, recipients: list[str]) -> None:
        """Tell every instance that ``subject`` appears as ``seen`` to ``recipients``."""
        if self.on_presence is not None:
            self.on_presence(subject, seen, recipients)
        self._out.share(
            {"t": "p", "u": subject, "s": seen.state, "l": seen.last_seen, "to": recipients}
        )

    def _deliver(self, targets: list[Target], frame: bytes) -> None:
        for user, only, skip in targets:
            for conn in self._hub.outlets(user):
                if (only is None or conn.device == only) and conn.device != skip:
                    conn.push(frame)

    # -- the task -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and publish until cancelled (returns at once without a broadcast)."""
        await self._out.run(self.apply, task_status=task_status)

    def apply(self, data: bytes) -> None:
        """Apply an event from the broadcast (unless this instance sent it)."""
        event = _decode(data)
        if event is None:
            log.warning("signals: malformed event of %d bytes dropped", len(data))
        elif event.instance == self.instance:
            return
        elif isinstance(event, _Frame):
            self._deliver(event.targets, event.frame)
        elif self.on_presence is not None:
            self.on_presence(event.subject, event.seen, event.recipients)


@dataclass(frozen=True, slots=True)
class _Frame:
    instance: str
    targets: list[Target]
    frame: bytes


@dataclass(frozen=True, slots=True)
class _Presence:
    instance: str
    subject: str
    seen: Seen
    recipients: list[str]


def _decode(data: bytes) -> _Frame | _Presence | None:
    if (envelope := _envelope(data)) is None:
        return None
    instance, event = envelope
    match event.get("t"):
        case "f":
            frame, targets = event.get("f"), _targets(event.get("to"))
            if isinstance(frame, bytes) and targets is not None:
                return _Frame(instance, targets, frame)
        case "p":
            subject, state, last_seen = event.get("u"), event.get("s"), event.get("l")
            recipients = event.get("to")
            if (
                is_valid_id(subject)
                and state in _SEEN_STATES
                and (last_seen is None or (type(last_seen) is int and last_seen >= 0))
                and isinstance(recipients, list)
                and all(isinstance(user, str) for user in recipients)
            ):
                return _Presence(instance, str(subject), Seen(str(state), last_seen), recipients)
    return None


def _optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _targets(value: object) -> list[Target] | None:
    if not isinstance(value, list):
        return None
    targets: list[Target] = []
    for target in value:
        if not (
            isinstance(target, list)
            and len(target) == 3
            and isinstance(target[0], str)
            and _optional_str(target[1])
            and _optional_str(target[2])
        ):
            return None
        targets.append((target[0], target[1], target[2]))
    return targets


# -- session events: ends and pushes -----------------------------------------------------


class Sessions(Protocol):
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
        self._out = _Outbound(broadcast, instance=instance, capacity=_FANOUT_QUEUE, name="fan-out")
        #: Revocations not logged (queue full, or the log refused them).
        self._unlogged = 0
        #: Session ends (4007) also go to the revocation log, the reliable path.
        self._revocations = revocations
        self._revoke_send, self._revoke_receive = trio.open_memory_channel[tuple[str, str | None]](
            _FANOUT_QUEUE
        )

    @property
    def dropped(self) -> int:
        """Events not shared and revocations not logged."""
        return self._out.dropped + self._unlogged

    def end_sessions(self, user: str, *, session: str | None, code: int, reason: str) -> None:
        self._out.share({"t": "end", "u": user, "s": session, "c": code, "r": reason})
        if self._revocations is not None and code == CloseCode.SESSION_ENDED:
            try:
                self._revoke_send.send_nowait((user, session))
            except trio.WouldBlock:
                self._unlogged += 1
                log.warning("revocation queue full: the database still refuses the session")

    def push_each(self, targets: list[tuple[str, str | None]], frame: bytes) -> None:
        self._out.share({"t": "push", "to": [list(target) for target in targets], "f": frame})

    async def run(
        self, target: Sessions, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and publish until cancelled; started once listening."""
        async with trio.open_nursery() as nursery:
            if self._revocations is not None:
                nursery.start_soon(self._append_revocations, self._revocations)
            await nursery.start(partial(self._out.run, lambda data: self.apply(target, data)))
            task_status.started()

    async def _append_revocations(self, revocations: Revocations) -> None:
        async for user, session in self._revoke_receive:
            try:
                await revocations.revoke(user, session)
            except Unavailable as exc:
                # HELLO, AUTH and HTTP still check the database; the pub/sub event
                # may still have closed the other instances' sockets.
                self._unlogged += 1
                log.warning("revocation not logged: %s", exc.message)

    def apply(self, target: Sessions, data: bytes) -> None:
        """Apply an event that arrived from the broadcast (unless it is this instance's)."""
        event = _session_event(data)
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


def _session_event(data: bytes) -> _End | _Push | None:
    if (envelope := _envelope(data)) is None:
        return None
    instance, event = envelope
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
            frame, targets = event.get("f"), _session_targets(event.get("to"))
            if isinstance(frame, bytes) and targets is not None:
                return _Push(instance, targets, frame)
    return None


def _session_targets(value: object) -> list[tuple[str, str | None]] | None:
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
