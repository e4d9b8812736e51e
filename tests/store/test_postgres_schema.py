"""PostgreSQL migrations and monthly message partitions, on a real server."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import trio

from sandcat.store.messages import Appended, NewMessage
from sandcat.store.postgres import Database, open_database
from sandcat.store.postgres.append import message_store
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.postgres.partitions import (
    ensure_partitions,
    months_from,
    run_partition_janitor,
)
from sandcat.store.postgres.schema import MIGRATIONS, migrate
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.conversations import open_conversation
from tests.store.backend import make_user


def _ms(year: int, month: int, day: int = 1) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp() * 1000)


def _query(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, args).fetchall())


async def test_instances_starting_together_apply_each_migration_once(
    empty_postgres_url: str,
) -> None:
    results: list[list[str]] = []

    async def instance() -> None:
        db = Database(empty_postgres_url, pool_size=1, timeout_s=20)
        try:
            results.append(await migrate(db))
        finally:
            await db.aclose()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(instance)
    names = [name for name, _ in MIGRATIONS]
    assert sorted(results, key=len) == [[], [], [], names]
    rows = _query(empty_postgres_url, "SELECT version, name FROM schema_migrations ORDER BY 1")
    assert rows == list(enumerate(names, start=1))
    # And once more, later: nothing to do, nothing changed.
    with trio.fail_after(10):
        async with open_database(empty_postgres_url, pool_size=1) as db:
            assert await migrate(db) == []


def test_months_roll_over_the_year() -> None:
    months = months_from(_ms(2030, 12, 31), 2)
    assert [(m.year, m.month, m.day) for m in months] == [(2030, 12, 1), (2031, 1, 1), (2031, 2, 1)]
    assert all(m.tzinfo is UTC for m in months)


def _where(url: str, cmid: str) -> str:
    [(table,)] = _query(url, "SELECT tableoid::regclass::text FROM messages WHERE cmid = %s", cmid)
    return str(table)


async def test_janitor_creates_months_ahead_and_rows_beyond_them_are_never_refused(
    postgres_url: str,
) -> None:
    now = [_ms(2031, 3, 15)]
    with trio.fail_after(30):
        async with open_database(postgres_url, pool_size=2) as db:
            await SqlAccountStore(db, POSTGRES).create_user(make_user("a"))
            await db.write(
                lambda conn: open_conversation(
                    Tx(conn, POSTGRES), cid="g:x", kind="group", members=["a"], now_ms=1
                )
            )
            store = message_store(db)

            async def send(cmid: str, when: int) -> None:
                [outcome] = await store.append(
                    [NewMessage("a", "a-d", "g:x", cmid, 1, b"\xa1x")],
                    now_ms=when,
                    open_direct=False,
                )
                assert isinstance(outcome, Appended)
                assert outcome.message.ts == when

            # Months nobody prepared: stored all the same (the default partition).
            await send("early", _ms(2031, 3, 20))
            await send("far", _ms(2031, 5, 2))
            assert _where(postgres_url, "far") == "messages_default"
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    lambda task_status: run_partition_janitor(
                        db,
                        lambda: now[0],
                        months_ahead=2,
                        interval_s=0.02,
                        task_status=task_status,
                    )
                )
                # Ready means this month and two ahead exist, strays moved in.
                assert _where(postgres_url, "early") == "messages_2031_03"
                assert _where(postgres_url, "far") == "messages_2031_05"
                # Time passes: the janitor keeps ahead of it.
                now[0] = _ms(2031, 12, 1)
                for _ in range(1000):
                    if _query(postgres_url, "SELECT to_regclass('messages_2032_02')")[0][0]:
                        break
                    await trio.sleep(0.02)
                nursery.cancel_scope.cancel()
            await send("next-year", _ms(2032, 1, 31))
            assert _where(postgres_url, "next-year") == "messages_2032_01"
            assert _query(postgres_url, "SELECT count(*) FROM messages_default") == [(0,)]
            # Idempotent: running again creates nothing new and moves nothing.
            names = await ensure_partitions(db, now_ms=_ms(2031, 12, 1), months_ahead=2)
            assert names == ["messages_2031_12", "messages_2032_01", "messages_2032_02"]
            page = await store.pull("a", "g:x", after=0, limit=10)
            assert [m.cmid for m in page.messages] == ["early", "far", "next-year"]
