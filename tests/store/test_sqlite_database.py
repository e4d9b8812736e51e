"""The SQLite Database: migrations, write transactions, snapshot reads, closing."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from sandcat.errors import Conflict, StoreUnavailable
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.lock import lock_path, serve_lock
from sandcat.store.sqlite.schema import MIGRATIONS


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite", synchronous="NORMAL") as database:
        await database.write(lambda conn: conn.execute("CREATE TABLE t (x INTEGER)"))
        yield database


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


async def rows(db: Database) -> list[int]:
    return await db.read(lambda conn: [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")])


async def test_a_missing_folder_is_not_made_and_the_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "db.sqlite"
    with pytest.raises(StoreUnavailable, match=f"cannot open {path}"):
        async with open_database(path):
            pass
    assert not path.parent.exists()


async def test_migrations_run_once_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with trio.fail_after(10):
        async with open_database(path) as db:
            await db.write(
                lambda conn: conn.execute("INSERT INTO counters (name, value) VALUES ('probe', 41)")
            )
        assert user_version(path) == len(MIGRATIONS)
        # Reopening must not re-run migration 1 (it would fail on CREATE TABLE,
        # or reset the counters).
        async with open_database(path) as db:
            value = await db.read(
                lambda conn: conn.execute(
                    "SELECT value FROM counters WHERE name = 'probe'"
                ).fetchone()[0]
            )
            assert value == 41
        assert user_version(path) == len(MIGRATIONS)


async def test_write_commits_and_returns_the_result(db: Database) -> None:
    def insert(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (1), (2)")
        return 7

    with trio.fail_after(5):
        assert await db.write(insert) == 7
        assert await rows(db) == [1, 2]


async def test_a_raising_write_rolls_back_everything(db: Database) -> None:
    class Boom(Exception):
        pass

    def half(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        raise Boom

    with trio.fail_after(5):
        with pytest.raises(Boom):
            await db.write(half)
        assert await rows(db) == []
        # The writer is usable again: the failed transaction was closed.
        await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
        assert await rows(db) == [2]


async def test_a_sqlite_error_rolls_back_and_becomes_store_unavailable(db: Database) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    with trio.fail_after(5):
        with pytest.raises(StoreUnavailable) as caught:
            await db.write(broken)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert await rows(db) == []


async def test_a_unique_violation_becomes_the_error_mapped_to_its_key(db: Database) -> None:
    with trio.fail_after(5):
        await db.write(lambda conn: conn.execute("CREATE UNIQUE INDEX tx ON t(x)"))

        def twice(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("INSERT INTO t VALUES (1)")

        taken = {"t(x)": lambda: Conflict("x is taken", field="x")}
        with pytest.raises(Conflict, match="x is taken") as caught:
            await db.write(twice, conflicts=taken)
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
        # Unmapped (no map, or another key): a plain Conflict.
        with pytest.raises(Conflict, match="conflicting write"):
            await db.write(twice)
        with pytest.raises(Conflict, match="conflicting write"):
            await db.write(twice, conflicts={"t(y)": taken["t(x)"]})
        assert await rows(db) == []


async def test_a_failed_commit_rolls_back_and_the_writer_recovers(db: Database) -> None:
    """A deferred foreign key is checked by COMMIT itself, which then fails."""

    def schema(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
        )

    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO child VALUES (99)")

    with trio.fail_after(5):
        await db.write(schema)
        with pytest.raises(Conflict, match="integrity violation: FOREIGN KEY"):
            await db.write(orphan)
        assert await rows(db) == []
        # The failed COMMIT left no transaction open behind it.
        await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
        assert await rows(db) == [2]


async def test_disk_full_rolls_back_and_the_writer_recovers(
    db: Database,
) -> None:
    """A real SQLITE_FULL: the database may not grow by a single page."""

    def cap(conn: sqlite3.Connection) -> int:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return int(pages)

    def big(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("CREATE TABLE blob_t (b BLOB)")
        conn.execute("INSERT INTO blob_t VALUES (?)", (b"x" * 200_000,))

    with trio.fail_after(5):
        pages = await db.write(cap)
        with pytest.raises(StoreUnavailable, match="full"):
            await db.write(big)
        assert await rows(db) == []
        await db.write(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages * 1000}"))
        await db.write(big)
        assert await rows(db) == [1]


async def test_reads_see_committed_data_only(db: Database) -> None:
    inside = trio.Event()
    release = trio.Event()
    seen: list[list[int]] = []

    def slow_insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        trio.from_thread.run_sync(inside.set)
        trio.from_thread.run(release.wait)

    async def writer() -> None:
        await db.write(slow_insert)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await inside.wait()
            # The row is inserted but not committed: readers must not see it.
            seen.append(await rows(db))
            release.set()
        seen.append(await rows(db))
    assert seen == [[], [1]]


async def test_a_read_is_one_snapshot(db: Database) -> None:
    await db.write(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))

    def two_looks(conn: sqlite3.Connection) -> tuple[int, int]:
        first = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        trio.from_thread.run(db.write, lambda w: w.execute("INSERT INTO t VALUES (2)"))
        second = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        return first, second

    with trio.fail_after(5):
        assert await db.read(two_looks) == (1, 1)
        assert await rows(db) == [1, 2]


async def test_reads_cannot_write(db: Database) -> None:
    with trio.fail_after(5), pytest.raises(StoreUnavailable):
        await db.read(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))


async def test_aclose_is_idempotent_and_later_calls_are_unavailable(tmp_path: Path) -> None:
    with trio.fail_after(5):
        async with open_database(tmp_path / "db.sqlite") as db:
            await db.aclose()
            await db.aclose()
            with pytest.raises(StoreUnavailable):
                await db.write(lambda conn: None)
            with pytest.raises(StoreUnavailable):
                await db.read(lambda conn: None)
        # open_database closing it once more is fine too.
        await db.aclose()


async def test_aclose_waits_for_a_running_read(db: Database) -> None:
    inside = trio.Event()
    release = trio.Event()
    result: list[int] = []

    def slow_read(conn: sqlite3.Connection) -> int:
        trio.from_thread.run_sync(inside.set)
        trio.from_thread.run(release.wait)
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

    async def reader() -> None:
        result.append(await db.read(slow_read))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await inside.wait()
            closed = trio.Event()

            async def close() -> None:
                await db.aclose()
                closed.set()

            nursery.start_soon(close)
            await trio.sleep(0.05)
            assert not closed.is_set()
            release.set()
        assert result == [0]
        with pytest.raises(StoreUnavailable):
            await db.read(lambda conn: None)


async def test_a_corrupt_file_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not a database, just some text " * 100)
    with trio.fail_after(5), pytest.raises(StoreUnavailable, match="cannot open"):
        async with open_database(path):
            pass  # pragma: no cover


async def test_an_unopenable_path_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with trio.fail_after(5):
        # The parent "directory" is a regular file.
        with pytest.raises(StoreUnavailable, match="cannot open"):
            async with open_database(blocker / "db.sqlite"):
                pass  # pragma: no cover
        # The database path is a directory.
        with pytest.raises(StoreUnavailable, match="cannot open"):
            async with open_database(tmp_path):
                pass  # pragma: no cover


async def test_a_read_while_every_reader_is_borrowed_waits_instead_of_failing(
    db: Database,
) -> None:
    """A regression: it used to fail with "database is closed"."""
    release = threading.Event()
    borrowed = 0

    def held(conn: sqlite3.Connection) -> int:
        nonlocal borrowed
        borrowed += 1
        release.wait(5)
        return 1

    results: list[int] = []

    async def read(fn: Callable[[sqlite3.Connection], int]) -> None:
        results.append(await db.read(fn))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(2):  # the pool's size
                nursery.start_soon(read, held)
            while borrowed < 2:  # noqa: ASYNC110 - counted by worker threads
                await trio.sleep(0.001)
            nursery.start_soon(read, lambda conn: 2)
            await trio.sleep(0.05)
            release.set()
    assert sorted(results) == [1, 1, 2]


def test_the_serve_lock_is_held_once_and_names_its_holder(tmp_path: Path) -> None:
    database = tmp_path / "sandcat.db"
    with serve_lock(database):
        with pytest.raises(StoreUnavailable) as caught, serve_lock(database):
            pass  # pragma: no cover
        assert f"(pid {os.getpid()}, lock {lock_path(database)})" in str(caught.value)
    with serve_lock(database):  # released with the first holder
        pass
