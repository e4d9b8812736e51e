"""The portable transaction layer (``store.sql._tx``) on both engines."""

# ruff: noqa: S608 (the statements are built from the dialect's fixed fragments)

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql._tx import Dialect, SqlStore, Tx, conflict_key
from sandcat.store.sql.migrations import load_migrations
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import Backend, make_user


def _dialect(backend: Backend) -> Dialect:
    return SQLITE if backend.kind == "sqlite" else POSTGRES


def test_statements_are_translated_once_and_percent_signs_kept() -> None:
    text = "SELECT 1 WHERE 'a%' LIKE ? AND ? = 1 -- statement cache test"
    assert SQLITE.sql(text) is text
    translated = POSTGRES.sql(text)
    assert translated == "SELECT 1 WHERE 'a%%' LIKE %s AND %s = 1 -- statement cache test"
    assert POSTGRES.sql(text) is translated  # cached: the same object, not a new translation


def test_a_conflict_key_names_the_table_and_its_columns_in_key_order() -> None:
    assert conflict_key("friends", ["user_id", "friend_id"]) == "friends(user_id, friend_id)"


async def test_lists_locks_times_and_mentions_on_either_engine(backend: Backend) -> None:
    store = SqlStore(backend.db, _dialect(backend))  # type: ignore[arg-type]
    await backend.users(make_user("a"), make_user("b"), make_user("c"))
    await backend.open_conversation("d:a:b", "direct", ["a", "b"])
    await backend.open_conversation("d:a:c", "direct", ["a", "c"])

    def work(tx: Tx) -> tuple[object, ...]:
        tx.lock("quota:a")  # an advisory lock (PostgreSQL) or nothing (SQLite)
        tx.lock("quota:a")  # the same transaction may take it again
        locked = tx.lock_conversations(["d:a:c", "d:zz", "d:a:b", "d:a:c"])
        rows = tx.all(
            f"SELECT user_id FROM conversation_members WHERE {tx.among('cid')} "
            f"ORDER BY user_id{tx.dialect.collate}",
            tx.array(["d:a:c"]),
        )
        tx.many(
            "UPDATE conversation_members SET can_send = ? WHERE user_id = ? AND cid = ?",
            [(False, "a", "d:a:b"), (False, "b", "d:a:b")],
        )
        (blocked,) = tx.one(
            "SELECT count(*) FROM conversation_members WHERE NOT can_send AND cid = ?", "d:a:b"
        )
        (distinct,) = tx.one(
            f"SELECT count(*) FROM conversation_members WHERE cid {tx.dialect.is_not} ?", None
        )
        return locked, [user for (user,) in rows], blocked, distinct

    with trio.fail_after(10):
        locked, users, blocked, distinct = await store._write(work)
    assert locked == {"d:a:b", "d:a:c"}
    assert users == ["a", "c"]
    assert (blocked, distinct) == (2, 4)


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_times_and_mentions_round_trip(dialect: Dialect) -> None:
    tx = Tx(None, dialect)
    assert tx.time_out(tx.time_in(1_700_000_000_123)) == 1_700_000_000_123
    assert tx.time_out(None) == 0
    assert tx.time_or_none(None) is None
    assert tx.time_or_none(tx.time_in(5)) == 5
    for mentions in (None, (), ("u1", "@all")):
        assert dialect.mentions_out(dialect.mentions_in(mentions)) == mentions


def test_migrations_load_in_order_and_a_gap_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "fake_engine" / "migrations"
    folder.mkdir(parents=True)
    (tmp_path / "fake_engine" / "__init__.py").write_text("")
    (folder / "0002_b.sql").write_text("SELECT 2;")
    (folder / "0001_a.sql").write_text("SELECT 1;")
    (folder / "notes.txt").write_text("not a migration")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_migrations("fake_engine") == (
        ("0001_a.sql", "SELECT 1;"),
        ("0002_b.sql", "SELECT 2;"),
    )
    (folder / "0004_d.sql").write_text("SELECT 4;")
    with pytest.raises(RuntimeError, match=r"0004_d\.sql is out of sequence: expected 0003_"):
        load_migrations("fake_engine")
