"""Ephemeral signals for every instance: typing, call events and presence changes.

The beacon delivers a signal to this instance's sockets at once and shares it
over the broadcast (its own channel, ``<redis_channel>.signals``); every
other instance delivers it to its sockets when it arrives. In embedded mode
there is no broadcast and local delivery is all there is. Like the session
fan-out (gateway/fanout.py), nothing is stored and nothing blocks the
caller: events wait in a bounded queue for the publisher task and are
dropped (counted, logged) when it is full or Redis refuses them — a lost
typing indicator expires on its own, a lost presence change is corrected by
the next snapshot, and call signalling clients retry or time out.

Events are msgpack maps checked field by field on arrival; anything else is
logged and dropped, never applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import msgpack
import trio

from sandcat.bus.broadcast import Broadcast, BroadcastUnavailable
from sandcat.pipeline.outlet import Outlet
from sandcat.protocol import is_valid_id
from sandcat.store.presence import Seen

log = logging.getLogger(__name__)

#: Events waiting to be published before new ones are dropped.
_QUEUE = 4096
#: Largest event accepted from the broadcast (a presence change to 10,000 friends fits).
MAX_EVENT_BYTES = 1 << 20
_SEEN_STATES = ("online", "away", "busy", "offline")

#: A recipient: (user, only this device or None, every device but this one or None).
Target = tuple[str, str | None, str | None]
#: Called with (subject, how they appear, recipients) for every presence change.
PresenceSink = Callable[[str, Seen, list[str]], None]


class Outlets(Protocol):
    def outlets(self, user: str) -> Iterable[Outlet]: ...


class Beacon:
    def __init__(self, hub: Outlets, broadcast: Broadcast | None, *, instance: str) -> None:
        self.instance = instance
        self.dropped = 0
        self._hub = hub
        self._broadcast = broadcast
        self._send, self._receive = trio.open_memory_channel[bytes](_QUEUE)
        self.on_presence: PresenceSink | None = None

    # -- sending ------------------------------------------------------------------------

    def push(self, targets: list[Target], frame: bytes) -> None:
        """Push an encoded frame to the targets' devices here and on every other instance."""
        self._deliver(targets, frame)
        self._share({"t": "f", "to": [list(target) for target in targets], "f": frame})

    def presence(self, subject: str, seen: Seen, recipients: list[str]) -> None:
        """Tell every instance that ``subject`` appears as ``seen`` to ``recipients``."""
        if self.on_presence is not None:
            self.on_presence(subject, seen, recipients)
        self._share(
            {"t": "p", "u": subject, "s": seen.state, "l": seen.last_seen, "to": recipients}
        )

    def _deliver(self, targets: list[Target], frame: bytes) -> None:
        for user, only, skip in targets:
            for conn in self._hub.outlets(user):
                if (only is None or conn.device == only) and conn.device != skip:
                    conn.push(frame)

    def _share(self, event: dict[str, object]) -> None:
        if self._broadcast is None:
            return
        event["i"] = self.instance
        try:
            self._send.send_nowait(msgpack.packb(event, use_bin_type=True))
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("signal queue full: event dropped")

    # -- the task -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and publish until cancelled (returns at once without a broadcast)."""
        if self._broadcast is None:
            task_status.started()
            return
        async with trio.open_nursery() as nursery:
            await nursery.start(self._broadcast.listen, self.apply)
            task_status.started()
            async for data in self._receive:
                try:
                    await self._broadcast.publish(data)
                except BroadcastUnavailable as exc:
                    self.dropped += 1
                    log.warning("signal event dropped: %s", exc.message)

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
    if len(data) > MAX_EVENT_BYTES:
        return None
    try:
        event = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(event, dict) or not isinstance(instance := event.get("i"), str):
        return None
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
