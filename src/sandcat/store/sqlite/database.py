"""A SQLite database driven from worker threads, one writer at a time.

All writes go through ``Database.write``: one transaction (``BEGIN IMMEDIATE``
... ``COMMIT``) on the single writer connection, serialised by a capacity
limiter of one, so the persister's group commits and the API's writes never
interleave. Reads use a small pool of read-only connections; WAL mode lets them
run beside the writer and see only committed data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import trio

from sandcat.errors import (
    BackendFailure,
    Conflict,
    LocalStoreUnavailable,
    RejectedValue,
    SandcatError,
    StoreUnavailable,
    ignore_failure,
)
from sandcat.private_files import touch_private
from sandcat.store.sqlite.schema import MIGRATIONS

T = TypeVar("T")

#: Concurrent readers: the machines this runs on have few cores and SQLite
#: reads are CPU-bound, so more threads would only contend for the GIL.
_READERS = 2
#: How long a connection waits on a lock held by another process (a stale
#: second server on the same data directory) before failing.
_BUSY_TIMEOUT_MS = 5000


class Database:
    """An open SQLite database. Use ``open_database`` to get one."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self.path = path
        self._on_failure = on_failure
        self._synchronous = synchronous
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(_READERS)
        self._closed = False
        #: Write transactions committed so far (``store.sqlite.append.Members`` uses
        #: it to know whether anything but its own appends wrote since it looked).
        self.commits = 0

    def _connect(self, *, readonly: bool) -> sqlite3.Connection:
        uri = f"file:{self.path}{'?mode=ro' if readonly else ''}"
        conn = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _open_sync(self) -> None:
        # The folder is not made here: a mistyped path must not start an empty
        # database somewhere (store/backends.py checks it and names it).
        touch_private(self.path)
        try:
            self._writer = self._connect(readonly=False)
            _migrate(self._writer)
            for _ in range(_READERS):
                self._readers.append(self._connect(readonly=True))
        except BaseException:
            # A half-open database (a corrupt file fails after connect) must not leak.
            for conn in [*self._readers, *([self._writer] if self._writer else [])]:
                conn.close()
            self._readers, self._writer = [], None
            raise

    async def open(self) -> None:
        try:
            await trio.to_thread.run_sync(self._open_sync)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            raise LocalStoreUnavailable(f"cannot open {self.path}: {exc}") from exc

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        conflicts: Mapping[str, Callable[[], SandcatError]] | None = None,
    ) -> T:
        """Run ``fn`` inside one write transaction and commit it.

        If ``fn`` raises, the transaction is rolled back and the exception
        propagates. A unique violation of a key named in ``conflicts``
        (``store.sql._tx.conflict_key``: ``table(col, col)``) raises the error
        made by its factory; any other integrity violation ``Conflict``. A value
        SQLite cannot take becomes ``RejectedValue``, any other SQLite failure
        ``StoreUnavailable``. Nothing is visible to readers until the commit
        has returned.
        """
        writer = self._writer
        if writer is None or self._closed:
            raise StoreUnavailable("database is closed")

        def transaction() -> T:
            writer.execute("BEGIN IMMEDIATE")
            try:
                result = fn(writer)
                writer.execute("COMMIT")
                self.commits += 1
            except BaseException:
                # A failed COMMIT (busy, disk full) leaves the transaction open,
                # and some errors have already rolled it back: roll back only what
                # is still open, so the next write can begin and the original
                # error is the one reported.
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                raise
            return result

        try:
            return await trio.to_thread.run_sync(transaction, limiter=self._write_limiter)
        except sqlite3.IntegrityError as exc:
            raise _conflict(exc, conflicts or {}) from exc
        except (sqlite3.DataError, UnicodeEncodeError, OverflowError) as exc:
            # Binding a str with a lone surrogate, an int beyond 64 bits, ...
            raise RejectedValue(f"sqlite refused a value: {exc}") from exc
        except sqlite3.Error as exc:
            self._failed(exc)
            raise StoreUnavailable(f"sqlite write failed: {exc}") from exc

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a read-only connection inside one snapshot transaction."""
        # Not "not self._readers": that list is empty whenever every reader is
        # borrowed, and a read then waits for the limiter instead of failing.
        if self._closed or self._writer is None:
            raise StoreUnavailable("database is closed")
        readers = self._readers

        def snapshot() -> T:
            conn = readers.pop()
            try:
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")
            finally:
                readers.append(conn)

        try:
            return await trio.to_thread.run_sync(snapshot, limiter=self._read_limiter)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise StoreUnavailable(f"sqlite read failed: {exc}") from exc

    def _failed(self, exc: BaseException) -> None:
        # A lock still held after busy_timeout is SQLite's deadline.
        locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
        self._on_failure("sqlite", "timeout" if locked else "error")

    async def aclose(self) -> None:
        """Close every connection; idempotent. Waits for running statements."""
        if self._closed:
            return
        self._closed = True
        # Take every reader slot too: a reader connection in use is out of the
        # pool, and closing it under a running read would leak or break it.
        borrowers: list[object] = []
        async with self._write_limiter:
            try:
                for _ in range(_READERS):
                    borrower = object()
                    await self._read_limiter.acquire_on_behalf_of(borrower)
                    borrowers.append(borrower)
                connections = [*self._readers, *([self._writer] if self._writer else [])]
                self._readers, self._writer = [], None
                for conn in connections:
                    conn.close()
            finally:
                for borrower in borrowers:
                    self._read_limiter.release_on_behalf_of(borrower)


#: SQLite's text for a unique violation: the table's columns, ``t.a, t.b``.
_UNIQUE_FAILED = "UNIQUE constraint failed: "


def _conflict(
    exc: sqlite3.IntegrityError, conflicts: Mapping[str, Callable[[], SandcatError]]
) -> SandcatError:
    """The error for an integrity violation (its text is all SQLite gives)."""
    text = str(exc)
    if not text.startswith(_UNIQUE_FAILED):
        return Conflict(f"integrity violation: {text}")
    names = [column.strip().split(".", 1) for column in text[len(_UNIQUE_FAILED) :].split(",")]
    key = f"{names[0][0]}({', '.join(name[-1] for name in names)})"
    make = conflicts.get(key)
    return Conflict("conflicting write") if make is None else make()


def _migrate(conn: sqlite3.Connection) -> None:
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version = {number};\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


@asynccontextmanager
async def open_database(
    path: Path, *, synchronous: str = "FULL", on_failure: BackendFailure = ignore_failure
) -> AsyncIterator[Database]:
    """Open (creating and migrating if needed) the database at ``path``."""
    db = Database(path, synchronous=synchronous, on_failure=on_failure)
    await db.open()
    try:
        yield db
    finally:
        with trio.CancelScope(shield=True):
            await db.aclose()
