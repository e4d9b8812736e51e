"""The hub: every authenticated connection on this instance, by user and device.

It is the send path's ``Directory`` (where to push a user's messages), the
inbox's ``Notifier`` (NOTIFY pushes) and the API's ``SessionCloser`` (logout
closes that session's sockets with 4007). A
second connection for the same ``(user, device)`` replaces the first, which is
closed with 4001 (protocol/SPEC.md §6, device slots).

With a ``fanout`` (cluster mode), session ends and READ_STATE pushes also go
to every other instance, which applies them with ``local_only``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from sandcat.protocol import CloseCode, GoAway, Notify, encode
from sandcat.store.inbox import Notice

if TYPE_CHECKING:
    from sandcat.gateway.beacon import Fanout


class Member(Protocol):
    """What the hub needs of a connection."""

    @property
    def user(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def session(self) -> str: ...
    def push(self, data: bytes) -> None: ...
    def close(self, code: int, reason: str = "") -> None: ...
    def close_after_flush(self, code: int, reason: str) -> None: ...
    def start_draining(self) -> None: ...
    def queued(self) -> int: ...


class Hub:
    def __init__(self, fanout: Fanout | None = None) -> None:
        #: Every open connection, authenticated or not (the drain closes them all).
        self._live: set[Member] = set()
        #: Authenticated connections by user and device (the device slots).
        self._users: dict[str, dict[str, Member]] = {}
        self._emptied = trio.Event()
        self.draining = False
        #: Shares session ends and pushes with the other instances (cluster mode).
        self._fanout = fanout

    def user_count(self) -> int:
        """Users with at least one connection here."""
        return len(self._users)

    def __len__(self) -> int:
        """Open connections, authenticated or not."""
        return len(self._live)

    def authenticated(self) -> int:
        """Connections that said HELLO and hold a device slot."""
        return sum(len(devices) for devices in self._users.values())

    def attach(self, conn: Member) -> None:
        """Track a connection from its first moment, before it has said HELLO."""
        self._live.add(conn)

    def queued_frames(self) -> int:
        """Frames waiting in every connection's outbound queue (a metrics gauge)."""
        return sum(conn.queued() for devices in self._users.values() for conn in devices.values())

    def register(self, conn: Member) -> None:
        """Give an authenticated connection its device slot, replacing an older one."""
        devices = self._users.setdefault(conn.user, {})
        previous = devices.get(conn.device)
        devices[conn.device] = conn
        if previous is not None and previous is not conn:
            previous.close(CloseCode.REPLACED, "replaced by a newer connection of this device")

    def unregister(self, conn: Member) -> None:
        """Forget a connection that has closed."""
        self._live.discard(conn)
        devices = self._users.get(conn.user)
        if devices is not None and devices.get(conn.device) is conn:
            del devices[conn.device]
            if not devices:
                del self._users[conn.user]
        if not self._live:
            self._emptied.set()
            self._emptied = trio.Event()

    async def wait_empty(self) -> None:
        """Return once no connection is left."""
        while self._live:
            await self._emptied.wait()

    def sessions(self) -> list[tuple[str, str]]:
        """``(user, session)`` of every authenticated connection here."""
        return [(c.user, c.session) for devices in self._users.values() for c in devices.values()]

    def connections_besides(self, user: str, device: str) -> int:
        """How many of ``user``'s connections here are on devices other than ``device``."""
        devices = self._users.get(user, {})
        return len(devices) - (device in devices)

    def outlets(self, user: str) -> Iterable[Member]:
        devices = self._users.get(user)
        return () if devices is None else devices.values()

    def end_sessions(
        self,
        user: str,
        *,
        session: str | None = None,
        code: int = CloseCode.SESSION_ENDED,
        reason: str = "",
        local_only: bool = False,
    ) -> None:
        reason = reason or "session ended"
        for conn in list(self.outlets(user)):
            if session is None or conn.session == session:
                conn.close(code, reason)
        if self._fanout is not None and not local_only:
            self._fanout.end_sessions(user, session=session, code=code, reason=reason)

    def push_each(
        self, targets: list[tuple[str, str | None]], frame: bytes, *, local_only: bool = False
    ) -> None:
        """Push ``frame`` to every device of each ``(user, skipped device)`` but the skipped one."""
        for user, skip in targets:
            for conn in self.outlets(user):
                if conn.device != skip:
                    conn.push(frame)
        if self._fanout is not None and not local_only:
            self._fanout.push_each(targets, frame)

    def publish(self, notices: Sequence[Notice]) -> None:
        """Push committed inbox notices to every device of their users (the ``Notifier``).

        In cluster mode they reach devices on other instances through the fan-out
        too; a device that misses one learns of it from SYNC's ``inbox_max``.
        """
        for notice in notices:
            frame = encode(
                Notify(nseq=notice.nseq, type=notice.type, data=notice.data, ts=notice.created_at)
            )
            self.push_each([(notice.user, None)], frame)

    def go_away(self, *, reason: str, reconnect_after_ms: int) -> None:
        """Tell every client this instance is going away (before the drain)."""
        self.draining = True
        frame = encode(GoAway(reason=reason, reconnect_after_ms=reconnect_after_ms))
        for devices in self._users.values():
            for conn in devices.values():
                conn.start_draining()
                conn.push(frame)

    def close_all(self, code: int, reason: str) -> None:
        """Close every connection once what is queued for it (acks) is written."""
        for conn in list(self._live):
            conn.close_after_flush(code, reason)
