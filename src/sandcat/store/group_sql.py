"""One transaction of group changes, over SQLite or PostgreSQL.

The group changes are the same rules and the same statements on both
backends, so they are written once (``group_changes``) against this ``Tx``:
SQL with ``?`` placeholders and portable syntax, times passed through the
engine (integer ms in SQLite, ``timestamptz`` in PostgreSQL), and the few
backend-specific steps (the SYNC version, inbox notices, the outbox, row
locks) supplied by each backend's ``Engine``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sandcat.store.inbox import NewNotice, Notice
from sandcat.store.messages import StoredMessage


@dataclass(frozen=True, slots=True)
class Engine:
    """What differs between the backends."""

    #: ``?`` in SQLite, ``%s`` in PostgreSQL.
    placeholder: str
    #: Appended to a SELECT that must lock its rows until commit ("" in SQLite,
    #: whose single writer already serialises every change).
    for_update: str
    #: Appended to a text column in ORDER BY, so both backends sort ids bytewise.
    collate: str
    time_in: Callable[[int], object]
    time_out: Callable[[Any], int]
    bump_version: Callable[[Any], int]
    post_notices: Callable[[Any, Sequence[NewNotice], int], tuple[Notice, ...]]
    #: Writes the outbox row of a committed system message (cluster mode), or nothing.
    publish: Callable[[Any, StoredMessage, tuple[str, ...]], None]


class Tx:
    """A connection inside a write (or read) transaction, with portable statements."""

    def __init__(self, conn: Any, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine

    def _sql(self, sql: str) -> str:
        return sql if self.engine.placeholder == "?" else sql.replace("?", "%s")

    def one(self, sql: str, *args: object) -> Any:
        return self.conn.execute(self._sql(sql), args).fetchone()

    def all(self, sql: str, *args: object) -> list[Any]:
        return list(self.conn.execute(self._sql(sql), args).fetchall())

    def run(self, sql: str, *args: object) -> int:
        """Execute a statement; the number of rows it changed."""
        return int(self.conn.execute(self._sql(sql), args).rowcount)

    def post(self, notices: Sequence[NewNotice], now_ms: int) -> tuple[Notice, ...]:
        """Write inbox notices, in user order (PostgreSQL locks each user's inbox
        head: one order everywhere keeps two changes from deadlocking)."""
        ordered = sorted(notices, key=lambda notice: notice.user)
        return self.engine.post_notices(self.conn, ordered, now_ms)

    def time_in(self, ms: int) -> object:
        return self.engine.time_in(ms)

    def time_out(self, value: Any) -> int:
        return 0 if value is None else self.engine.time_out(value)
