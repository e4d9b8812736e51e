"""Typing, presence and call signalling for a session (``session.signals``, SPEC.md §5.9-5.11).

Signals are ephemeral, so nothing here is resent: each request is made once,
on the current connection, and fails with `SandcatClientError` (the server's
ERR) or `ConnectionLost`. Pushes (TYPING, PRESENCE, CALL_EVENT) queue for
`receive`; when the queue is full more are dropped and counted. A presence
subscription survives reconnects: the session subscribes again on every new
connection and queues the fresh snapshot as a PRESENCE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import trio

from sandcat.protocol import (
    Call,
    CallEvent,
    ClientFrame,
    Ok,
    Presence,
    PresenceSet,
    Typing,
    TypingEvent,
)

from .connection import Connection
from .link import Link
from .options import SessionOptions, SessionStatistics

__all__ = ["CallPlaced", "PresenceSnapshot", "SignalEvent", "Signals"]

SignalEvent: TypeAlias = TypingEvent | Presence | CallEvent


@dataclass(frozen=True, slots=True)
class PresenceSnapshot:
    """The reply to PRESENCE_SET: this user's chosen state and their friends' presence."""

    state: str
    users: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class CallPlaced:
    """The reply to an invite: the call id, and ``ringing`` or ``busy``."""

    call: str
    state: str


class Signals:
    def __init__(self, link: Link, options: SessionOptions, stats: SessionStatistics) -> None:
        self._link = link
        self._options = options
        self._stats = stats
        self._in, self._out = trio.open_memory_channel[SignalEvent](options.signal_buffer)
        self._watching = False

    async def typing(self, cid: str, *, active: bool = True) -> None:
        """Tell the other members of ``cid`` that this user is typing (or stopped)."""
        await self._once(lambda rid: Typing(rid=rid, cid=cid, active=active))

    async def watch_presence(self, state: str | None = None) -> PresenceSnapshot:
        """Subscribe to friends' presence (optionally choosing this user's ``state``)."""
        ok = await self._once(lambda rid: PresenceSet(rid=rid, state=state))
        self._watching = True
        return _snapshot(ok)

    async def invite(self, peer: str, media: str = "audio") -> CallPlaced:
        """Ring ``peer``'s devices (or learn they are busy)."""
        ok = await self._once(lambda rid: Call(rid=rid, action="invite", peer=peer, media=media))
        return CallPlaced(call=str(ok.body["call"]), state=str(ok.body["state"]))

    async def call(
        self,
        action: str,
        call: str,
        *,
        sdp: str | None = None,
        candidate: Mapping[str, object] | None = None,
    ) -> None:
        """One step of a call: accept, reject, cancel, hangup, offer, answer or candidate."""
        await self._once(
            lambda rid: Call(rid=rid, action=action, call=call, sdp=sdp, candidate=candidate)
        )

    async def receive(self) -> SignalEvent:
        """The next TYPING, PRESENCE or CALL_EVENT push."""
        return await self._out.receive()

    # -- called by the session -------------------------------------------------------------

    def offer(self, frame: SignalEvent) -> None:
        try:
            self._in.send_nowait(frame)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self._stats.signals_dropped += 1

    async def resubscribe(self, conn: Connection) -> None:
        """On a new connection: subscribe again and queue the snapshot."""
        if self._watching:
            ok = await conn.call(lambda rid: PresenceSet(rid=rid))
            self.offer(Presence(users=_snapshot(ok).users))

    def close(self) -> None:
        self._in.close()

    async def _once(self, build: Callable[[int], ClientFrame]) -> Ok:
        with trio.fail_after(self._options.operation_timeout_s):
            conn = await self._link.connection()
            return await conn.call(build)


def _snapshot(ok: Ok) -> PresenceSnapshot:
    users = ok.body.get("users")
    entries = tuple(dict(entry) for entry in users) if isinstance(users, list) else ()
    return PresenceSnapshot(state=str(ok.body.get("state", "")), users=entries)
