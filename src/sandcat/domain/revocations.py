"""Session revocations every instance hears about, reliably and within a second.

Logging out, revoking a session, changing the password or disabling an
account ends sessions in the database (the source of truth, checked at every
HELLO, AUTH and HTTP request) and closes the session's sockets on this
instance at once. Sockets on other instances are closed by the fan-out's
pub/sub event, which is fast but at-most-once. This log is the reliable
path: each revocation is appended to it, and every instance polls it every
``interval_s`` (a quarter second by default) and closes its local sockets of
the revoked sessions — a socket does not need a database query per frame to
be cut off.

If the log's backend loses its data (Redis FLUSHALL or restart), the poll
reports a reset; the watcher then re-checks every local socket's session
against the database once, so a revocation that was in the lost log still
takes effect. The log itself and its implementations are in
``sandcat.store.revocations``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

import trio

from sandcat.errors import Unavailable
from sandcat.store.revocations import Revocations

log = logging.getLogger(__name__)


class Sockets(Protocol):
    """What the watcher needs of the hub."""

    def end_sessions(
        self, user: str, *, session: str | None, code: int, reason: str, local_only: bool
    ) -> None: ...

    def sessions(self) -> Iterable[tuple[str, str]]:
        """``(user, session)`` of every authenticated socket on this instance."""
        ...


class SessionChecker(Protocol):
    async def is_session_live(self, user: str, session: str) -> bool: ...


async def run_revocation_watch(
    revocations: Revocations,
    sockets: Sockets,
    checker: SessionChecker,
    *,
    interval_s: float,
    close_code: int,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Close local sockets of revoked sessions every ``interval_s``, until cancelled."""
    await revocations.poll()  # start at the log's end: older entries predate our sockets
    task_status.started()
    recheck = False
    while True:
        await trio.sleep(interval_s)
        try:
            batch = await revocations.poll()
        except Unavailable as exc:
            log.warning("revocation log unavailable: %s", exc.message)
            continue
        for entry in batch.revoked:
            sockets.end_sessions(
                entry.user,
                session=entry.session,
                code=close_code,
                reason="session revoked",
                local_only=True,
            )
        if batch.reset:
            log.warning("revocation log was reset; re-checking every local session")
            recheck = True
        if recheck:
            # The database may be away too (a flush during an outage): a failed
            # re-check is tried again next round, it never ends the server.
            try:
                await _recheck(sockets, checker, close_code)
                recheck = False
            except Unavailable as exc:
                log.warning("session re-check failed, retrying: %s", exc.message)


async def _recheck(sockets: Sockets, checker: SessionChecker, close_code: int) -> None:
    for user, session in sorted(set(sockets.sessions())):
        if not await checker.is_session_live(user, session):
            sockets.end_sessions(
                user,
                session=session,
                code=close_code,
                reason="session revoked",
                local_only=True,
            )
