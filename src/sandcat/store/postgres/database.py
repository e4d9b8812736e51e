"""A PostgreSQL database driven from worker threads through psycopg 3.

Why threads and not asyncpg on trio-asyncio: measured on the CI machines (one
run, interleaved), a ``SELECT 1`` round trip cost ~360 µs of this process's
CPU through asyncpg on trio-asyncio against ~80-180 µs through psycopg in
``trio.to_thread``; a 200-row batch insert took 1.2 ms as asyncpg
``executemany`` and 0.5 ms as psycopg ``COPY``. The bridge works, but every
call pays for two event loops; the thread pool is cheaper and keeps each store
a set of plain functions over a connection, like the SQLite backend.

Every call runs one transaction on a pooled connection in a worker thread:
``write`` at READ COMMITTED (row locks serialise what must be serialised),
``read`` at REPEATABLE READ READ ONLY (one snapshot for the whole function).
A serialisation failure or deadlock is retried a few times. Every call has a
deadline: the caller is released when it passes, the connection is abandoned
(the worker closes it when the server answers or the statement timeout
fires), so a stalled server never holds a task forever. Driver errors are
translated here, once: connection and server failures become
``StoreUnavailable``; unique violations become the ``SandcatError`` the store
mapped to the unique key, or ``Conflict``. Stores name a key portably,
``table(col, col)`` (``store.sql._tx.conflict_key``); the constraint a
violation names is looked up in the catalog (once, then cached).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import trio

from sandcat.errors import (
    BackendFailure,
    Conflict,
    RejectedValue,
    SandcatError,
    StoreUnavailable,
    ignore_failure,
)

T = TypeVar("T")
Connection = psycopg.Connection[Any]

log = logging.getLogger(__name__)

#: Attempts of a transaction that lost a serialisation or deadlock race.
_ATTEMPTS = 3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(ms: int) -> datetime:
    """Wire milliseconds as a ``timestamptz`` parameter (exact, no float)."""
    return _EPOCH + timedelta(milliseconds=ms)


def ms(value: datetime) -> int:
    """A ``timestamptz`` column as wire milliseconds."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


@dataclass(slots=True)
class _Lease:
    """One call's claim on a connection, shared by the caller and its worker thread."""

    conn: Connection | None = None
    done: bool = False
    abandoned: bool = False


class Database:
    """A pool of PostgreSQL connections. Use ``open_database`` to get one."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        timeout_s: float,
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self.url = url
        self._on_failure = on_failure
        self._timeout_s = timeout_s
        self._idle: list[Connection] = []
        self._limiter = trio.CapacityLimiter(pool_size)
        self._lock = threading.Lock()
        self._closed = False
        #: Unique index (and constraint) names -> ``table(col, col)``; loaded on demand.
        self._unique_keys: dict[str, str] = {}

    def _connect(self) -> Connection:
        timeout_ms = int(self._timeout_s * 1000)
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, int(self._timeout_s)),
            # G1: an ack needs a durable commit, whatever the server default.
            options=(
                f"-c synchronous_commit=on -c statement_timeout={timeout_ms} "
                f"-c idle_in_transaction_session_timeout={timeout_ms} -c TimeZone=UTC"
            ),
            # A vanished server is noticed even by a worker whose caller gave up.
            tcp_user_timeout=timeout_ms,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
        )

    async def open(self) -> None:
        """Check that the server answers (one connection, kept in the pool)."""
        await self.run(lambda conn: conn.execute("SELECT 1"), write=False)

    async def write(
        self,
        fn: Callable[[Connection], T],
        *,
        conflicts: Mapping[str, Callable[[], SandcatError]] | None = None,
    ) -> T:
        """Run ``fn`` in one READ COMMITTED transaction and commit it.

        If ``fn`` raises, the transaction rolls back and the error propagates.
        A unique violation of a constraint named in ``conflicts`` raises the
        error made by its factory; of any other, ``Conflict``. A value PostgreSQL
        cannot take raises ``RejectedValue``; server or connection failures raise
        ``StoreUnavailable``; nothing was committed unless the commit returned.
        """
        return await self.run(fn, write=True, conflicts=conflicts)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one REPEATABLE READ, READ ONLY snapshot."""
        return await self.run(fn, write=False)

    async def run(
        self,
        fn: Callable[[Connection], T],
        *,
        write: bool,
        conflicts: Mapping[str, Callable[[], SandcatError]] | None = None,
    ) -> T:
        if self._closed:
            raise StoreUnavailable("database is closed")
        try:
            with trio.fail_after(self._timeout_s):
                return await self._in_thread(fn, write)
        except trio.TooSlowError as exc:
            self._on_failure("postgres", "timeout")
            raise StoreUnavailable(f"postgres call took over {self._timeout_s} s") from exc
        except psycopg.errors.UniqueViolation as exc:
            make = None
            if conflicts:
                make = conflicts.get(await self._unique_key(exc.diag.constraint_name or ""))
            raise (Conflict("conflicting write") if make is None else make()) from exc
        except psycopg.errors.IntegrityError as exc:
            raise Conflict(f"integrity violation: {exc.diag.message_primary}") from exc
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            # Text with U+0000 (refused by psycopg before sending), a lone
            # surrogate (unencodable), a number out of a column's range.
            raise RejectedValue(f"postgres refused a value: {exc}") from exc
        except psycopg.Error as exc:
            # The server's statement_timeout and the driver's connect timeout are deadlines too.
            timeout = isinstance(
                exc, (psycopg.errors.QueryCanceled, psycopg.errors.ConnectionTimeout)
            )
            self._on_failure("postgres", "timeout" if timeout else "error")
            raise StoreUnavailable(f"postgres failed: {exc}") from exc
        except OSError as exc:
            self._on_failure("postgres", "error")
            raise StoreUnavailable(f"postgres unreachable: {exc}") from exc

    async def _unique_key(self, name: str) -> str:
        """The portable key of the unique index ``name`` ("" if unknown)."""
        if name not in self._unique_keys:
            rows = await self.run(lambda conn: conn.execute(_UNIQUE_KEYS).fetchall(), write=False)
            self._unique_keys = {
                str(index): f"{table}({', '.join(columns)})" for index, table, columns in rows
            }
        return self._unique_keys.get(name, "")

    async def _in_thread(self, fn: Callable[[Connection], T], write: bool) -> T:
        lease = _Lease()

        def work() -> T:
            try:
                with self._lock:
                    lease.conn = self._idle.pop() if self._idle else None
                if lease.conn is None:
                    lease.conn = self._connect()
                return _transaction(lease.conn, fn, write)
            finally:
                conn = lease.conn
                with self._lock:
                    lease.done = True
                    keep = (
                        conn is not None
                        and not lease.abandoned
                        and not conn.broken
                        and not self._closed
                    )
                    if keep:
                        self._idle.append(conn)  # type: ignore[arg-type]
                if conn is not None and not keep:
                    conn.close()

        try:
            # The limiter's token stays taken until the thread ends, even when
            # the caller gives up on it: never more connections than the pool size.
            return await trio.to_thread.run_sync(
                work, abandon_on_cancel=True, limiter=self._limiter
            )
        except trio.Cancelled:
            with self._lock:
                # Still running: the worker closes its connection when it returns.
                lease.abandoned = not lease.done
            raise

    async def aclose(self) -> None:
        """Close the idle connections; busy ones close when their call returns."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


#: Every unique index of the current schema: its name, table and columns (a
#: unique constraint's index has the constraint's name).
_UNIQUE_KEYS = """
SELECT i.relname, t.relname, array_agg(a.attname::text ORDER BY k.n)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
WHERE x.indisunique AND t.relnamespace = current_schema()::regnamespace
GROUP BY i.relname, t.relname
"""


def _transaction(conn: Connection, fn: Callable[[Connection], T], write: bool) -> T:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with conn.transaction():
                if not write:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return fn(conn)
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
            if attempt == _ATTEMPTS:
                raise
            log.info("postgres transaction lost a race; retrying (attempt %d)", attempt)
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def open_database(
    url: str,
    *,
    pool_size: int = 10,
    timeout_s: float = 10.0,
    on_failure: BackendFailure = ignore_failure,
) -> AsyncIterator[Database]:
    """Connect to ``url`` and bring its schema up to date (see ``schema.migrate``)."""
    from sandcat.store.postgres.schema import migrate

    db = Database(url, pool_size=pool_size, timeout_s=timeout_s, on_failure=on_failure)
    try:
        await db.open()
        await migrate(db)
        yield db
    finally:
        with trio.CancelScope(shield=True):
            await db.aclose()
