"""One transaction over SQLite or PostgreSQL, with the statements written once.

The relational stores under ``store.sql`` are the same rules and the same
statements on both engines, so they are written once against ``Tx``: SQL with
``?`` placeholders and portable syntax. ``Dialect`` holds exactly what differs
between the engines, and each engine builds its own (``store.sqlite.dialect``,
``store.postgres.dialect``):

- placeholders: ``?`` stays in SQLite; PostgreSQL gets ``%s`` (and a literal
  ``%`` is doubled). Each statement is translated once and cached. A ``?``
  inside a string literal is not supported: pass the value as a parameter;
- ``FOR UPDATE`` (SQLite's single writer already serialises every change),
  the collation that sorts ids bytewise, ``IS NOT`` vs ``IS DISTINCT FROM``;
- time columns (integer ms in SQLite, ``timestamptz`` in PostgreSQL) and the
  mentions list (msgpack bytes vs ``text[]``);
- list membership: ``json_each(?)`` over a JSON array vs ``= ANY(?)`` over an
  array parameter, so one statement serves any list length;
- conflicts: a unique violation becomes the store's ``SandcatError``, looked up
  by a portable key naming the table and the unique columns, e.g.
  ``users(username_key)`` (``conflict_key``). Each engine's ``Database.write``
  translates its own driver error into that key once (SQLite's error text,
  PostgreSQL's constraint name);
- locks: ``FOR UPDATE`` (and ``SKIP LOCKED``), an advisory lock on a key;
- the one engine-specific step of a write: the outbox row of a system message.

Booleans need nothing: both drivers bind Python ``bool`` (SQLite as 0/1) and
``bool(column)`` reads either, and ``TRUE``/``FALSE``/``NOT column`` are valid
in both. Version bumps and conversation locks are portable statements here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sandcat.errors import SandcatError
from sandcat.store.inbox import NewNotice, Notice
from sandcat.store.messages import StoredMessage

T = TypeVar("T")

#: A unique key's errors: ``conflict_key`` -> the error to raise instead of ``Conflict``.
Conflicts = Mapping[str, Callable[[], SandcatError]]


def conflict_key(table: str, columns: Iterable[str]) -> str:
    """The portable name of a unique key: ``table(col, col)``, columns in key order."""
    return f"{table}({', '.join(columns)})"


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the engines (see the module docstring)."""

    #: "sqlite" or "postgres".
    name: str
    #: Appended to a SELECT that must lock its rows until commit ("" in SQLite,
    #: whose single writer already serialises every change).
    for_update: str
    #: Appended to a text column in ORDER BY, so both engines sort ids bytewise.
    collate: str
    #: The null-safe inequality: ``IS NOT`` (SQLite) or ``IS DISTINCT FROM``.
    is_not: str
    #: Follows a column to test membership in a list parameter (``tx.among``).
    member_of: str
    #: A list as that parameter (a JSON text in SQLite, the list in PostgreSQL).
    list_param: Callable[[Sequence[Any]], object]
    time_in: Callable[[int], object]
    time_out: Callable[[Any], int]
    #: The mentions column: a tuple (or None) as stored, and back.
    mentions_in: Callable[[Sequence[str] | None], object]
    mentions_out: Callable[[Any], tuple[str, ...] | None]
    #: The many-argument maximum: ``max`` (SQLite) or ``GREATEST``.
    greatest: str
    #: A JSON object column (the inbox's ``data``): a dict as stored, and back.
    json_in: Callable[[Mapping[str, Any]], object]
    json_out: Callable[[Any], dict[str, Any]]
    #: Writes the outbox row of a committed system message (cluster mode), or nothing.
    publish: Callable[[Any, StoredMessage, tuple[str, ...]], None]
    #: Follows ``for_update`` where a sweep skips rows others hold ("" in SQLite).
    skip_locked: str = ""
    #: Takes a lock on a text key until commit ("": SQLite's single writer holds one).
    advisory_lock: str = ""
    #: The UTC day number (days since 1970-01-01) of a time column, ``{}`` the column.
    epoch_day: str = "{} / 86400000"
    #: Translated statements, by the ``?`` text (filled on first use).
    _sql: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def for_update_of(self, alias: str) -> str:
        """Appended to a SELECT that must lock only the rows of ``alias`` until commit."""
        return f"{self.for_update} OF {alias}" if self.for_update else ""

    def sql(self, text: str) -> str:
        """``text`` with this engine's placeholders (translated once, then cached)."""
        done = self._sql.get(text)
        if done is None:
            done = text if self.name == "sqlite" else text.replace("%", "%%").replace("?", "%s")
            self._sql[text] = done
        return done


class Tx:
    """A connection inside a write (or read) transaction, with portable statements."""

    __slots__ = ("conn", "dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def one(self, sql: str, *args: object) -> Any:
        return self.conn.execute(self.dialect.sql(sql), args).fetchone()

    def all(self, sql: str, *args: object) -> list[Any]:
        return list(self.conn.execute(self.dialect.sql(sql), args).fetchall())

    def run(self, sql: str, *args: object) -> int:
        """Execute a statement; the number of rows it changed."""
        return int(self.conn.execute(self.dialect.sql(sql), args).rowcount)

    def many(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Execute one statement for each row of parameters."""
        cursor = self.conn.cursor()
        try:
            cursor.executemany(self.dialect.sql(sql), list(rows))
        finally:
            cursor.close()

    def among(self, column: str) -> str:
        """``column`` tested for membership in the next list parameter (``tx.array``)."""
        return f"{column} {self.dialect.member_of}"

    def array(self, values: Iterable[Any]) -> object:
        return self.dialect.list_param(list(values))

    def post(self, notices: Sequence[NewNotice], now_ms: int) -> tuple[Notice, ...]:
        """Write inbox notices, in user order (PostgreSQL locks each user's inbox
        head: one order everywhere keeps two changes from deadlocking)."""
        return post_notices(self, sorted(notices, key=lambda notice: notice.user), now_ms)

    def publish(self, message: StoredMessage, members: tuple[str, ...]) -> None:
        self.dialect.publish(self.conn, message, members)

    def time_in(self, ms: int) -> object:
        return self.dialect.time_in(ms)

    def time_out(self, value: Any) -> int:
        return 0 if value is None else self.dialect.time_out(value)

    def time_or_none(self, value: Any) -> int | None:
        return None if value is None else self.dialect.time_out(value)

    def lock(self, key: str) -> None:
        """Serialise the transactions that take ``key`` (until commit)."""
        if self.dialect.advisory_lock:
            self.one(self.dialect.advisory_lock, key)

    def bump_version(self) -> int:
        """Take the next global change version (SYNC's ``version``). The counter's row
        stays locked until commit, so versions become visible in commit order (see
        ``store.sql.conversations``): writers take it last, just before commit."""
        (value,) = self.one(
            "UPDATE counters SET value = value + 1 WHERE name = 'version' RETURNING value"
        )
        return int(value)

    def lock_conversations(self, cids: Iterable[str]) -> set[str]:
        """Lock the existing conversations among ``cids`` until commit (in cid order:
        no deadlock); the cids that exist."""
        rows = self.all(
            f"SELECT cid FROM conversations WHERE {self.among('cid')} "
            f"ORDER BY cid{self.dialect.collate}{self.dialect.for_update}",
            self.array(sorted(set(cids))),
        )
        return {str(cid) for (cid,) in rows}


def post_notices(tx: Tx, notices: Sequence[NewNotice], now_ms: int) -> tuple[Notice, ...]:
    """Write ``notices`` in the order given, each with its user's next nseq."""
    written: list[Notice] = []
    created = tx.time_in(now_ms)
    for new in notices:
        (nseq,) = tx.one(
            "INSERT INTO inbox_heads (user_id, max_nseq) VALUES (?, 1) "
            "ON CONFLICT (user_id) DO UPDATE SET max_nseq = inbox_heads.max_nseq + 1 "
            "RETURNING max_nseq",
            new.user,
        )
        data = dict(new.data)
        tx.run(
            "INSERT INTO inbox (user_id, nseq, type, data, created_at) VALUES (?, ?, ?, ?, ?)",
            new.user,
            nseq,
            new.type,
            tx.dialect.json_in(data),
            created,
        )
        written.append(Notice(new.user, int(nseq), new.type, data, now_ms))
    return tuple(written)


class Database(Protocol):
    """What ``SqlStore`` needs of either engine's ``Database``."""

    async def write(self, fn: Callable[[Any], T], *, conflicts: Conflicts | None = None) -> T: ...

    async def read(self, fn: Callable[[Any], T]) -> T: ...


class SqlStore:
    """Base of the ``Sql*Store`` classes: a database, its dialect, and transactions of ``Tx``."""

    def __init__(
        self, db: Database, dialect: Dialect, *, committed: Callable[[], None] | None = None
    ) -> None:
        self._db = db
        self._dialect = dialect
        #: Called after a write committed (wakes the outbox publisher in cluster mode).
        self._committed = committed

    async def _write(self, fn: Callable[[Tx], T], *, conflicts: Conflicts | None = None) -> T:
        dialect = self._dialect
        result = await self._db.write(lambda conn: fn(Tx(conn, dialect)), conflicts=conflicts)
        if self._committed is not None:
            self._committed()
        return result

    async def _read(self, fn: Callable[[Tx], T]) -> T:
        dialect = self._dialect
        return await self._db.read(lambda conn: fn(Tx(conn, dialect)))
