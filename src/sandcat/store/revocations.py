"""The revocation log: what ends a session on every instance (``sandcat.domain.revocations``
runs the watcher that reads it).

Each revocation is appended to the log and every instance polls it. If the
log's backend loses its data (Redis FLUSHALL or restart), the poll reports a
reset and the reader re-checks its sockets against the database.
``LocalRevocations`` is the in-process log (embedded mode, one instance);
``sandcat.store.redis.RedisRevocations`` is shared and
``sandcat.store.sql.revocation_log.SqlRevocationLog`` lives in the database.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import trio

#: Entries the in-process log keeps (older ones are dropped; see ``poll``).
_LOCAL_KEEP = 10_000


@dataclass(frozen=True, slots=True)
class Revoked:
    user: str
    #: None: every session of the user.
    session: str | None


@dataclass(frozen=True, slots=True)
class RevocationBatch:
    revoked: list[Revoked] = field(default_factory=list)
    #: The log lost entries this reader had not seen: re-check against the database.
    reset: bool = False


class Revocations(Protocol):
    async def revoke(self, user: str, session: str | None) -> None:
        """Append a revocation for every reader."""

    async def poll(self) -> RevocationBatch:
        """Revocations appended since this reader's last poll (none on its first)."""


class LocalRevocations:
    """The log in process memory, read by the one instance that writes it."""

    def __init__(self) -> None:
        self._entries: deque[Revoked] = deque(maxlen=_LOCAL_KEEP)
        self._appended = 0
        self._read = 0

    async def revoke(self, user: str, session: str | None) -> None:
        self._entries.append(Revoked(user, session))
        self._appended += 1
        await trio.lowlevel.checkpoint()

    async def poll(self) -> RevocationBatch:
        unread = self._appended - self._read
        self._read = self._appended
        await trio.lowlevel.checkpoint()
        fresh = list(self._entries)[len(self._entries) - min(unread, len(self._entries)) :]
        return RevocationBatch(fresh, reset=unread > len(self._entries))
