"""What only SQLite can show; the shared behaviour is in test_messages.py."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import trio

from sandcat.errors import StoreUnavailable
from sandcat.store.messages import Appended, NewMessage, Refused
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sql.messages import SqlMessageStore
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.append import message_store
from sandcat.store.sqlite.dialect import DIALECT

AB = "d:a:b"
AC = "d:a:c"
GROUP = "g:team"
NOW = 1_700_000_000_000


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite", synchronous="NORMAL") as database:

        def scene(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO users (id, username, username_key, password_hash, display_name, "
                "created_at, updated_at, disabled) VALUES (?, ?, ?, 'h', ?, 1, 1, ?)",
                [(u, u, u, u, int(u == "z")) for u in ("a", "b", "c", "e", "z")],
            )
            open_conversation(
                Tx(conn, DIALECT), cid=AB, kind="direct", members=("a", "b"), now_ms=1
            )
            open_conversation(
                Tx(conn, DIALECT), cid=GROUP, kind="group", members=("a", "b", "c"), now_ms=1
            )

        await database.write(scene)
        yield database


@pytest.fixture
def store(db: Database) -> SqlMessageStore:
    return message_store(db)


def new(sender: str, cid: str, cmid: str, body: bytes = b"\xa2hi", **extra: object) -> NewMessage:
    return NewMessage(
        sender=sender,
        device=f"{sender}-phone",
        cid=cid,
        cmid=cmid,
        kind=1,
        body=body,
        **extra,  # type: ignore[arg-type]
    )


async def append(
    store: SqlMessageStore, *batch: NewMessage, open_direct: bool = False
) -> list[Appended | Refused]:
    return await store.append(batch, now_ms=NOW, open_direct=open_direct)


def seqs(outcomes: Sequence[Appended | Refused]) -> list[int | None]:
    return [o.message.seq if isinstance(o, Appended) else None for o in outcomes]


async def count(db: Database, sql: str, *args: object) -> int:
    return await db.read(lambda conn: int(conn.execute(sql, args).fetchone()[0]))


async def test_a_failing_transaction_stores_nothing_and_consumes_no_seq(
    store: SqlMessageStore, db: Database
) -> None:
    """A real disk-full error on the last send of a batch rolls back the whole batch."""

    def cap(conn: sqlite3.Connection) -> int:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return int(pages)

    with trio.fail_after(5):
        pages = await db.write(cap)
        with pytest.raises(StoreUnavailable):
            await append(
                store,
                new("a", AB, "1"),
                new("b", GROUP, "1"),
                new("a", AB, "2", body=b"x" * 300_000),
            )
        await db.write(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages * 1000}"))
        assert await count(db, "SELECT COUNT(*) FROM messages") == 0
        assert await count(db, "SELECT MAX(max_seq) FROM conversations") == 0
        # The resend of the whole batch gets the seqs a success would have got.
        assert seqs(await append(store, new("a", AB, "1"), new("b", GROUP, "1"))) == [1, 1]


async def test_a_batch_writes_each_conversations_max_seq_once_and_its_seqs_follow_on(
    store: SqlMessageStore, db: Database
) -> None:
    """Within a batch a conversation's later sends take the seq after its previous
    one and ``max_seq`` is written once per conversation (issue 14); resends, an
    in-batch duplicate and a refused send take no seq and leave no hole (G2, G3)."""
    assert seqs(await append(store, new("a", AB, "old"))) == [1]
    statements: list[str] = []
    writer = db._writer
    assert writer is not None
    writer.set_trace_callback(statements.append)
    try:
        outcomes = await append(
            store,
            new("a", AB, "1"),
            new("b", GROUP, "1"),
            new("a", AB, "old"),  # a resend of the earlier batch's message
            new("e", AB, "x"),  # not a member: refused
            new("b", AB, "2"),
            new("a", AB, "1"),  # the same send twice in the batch
            new("c", GROUP, "2"),
            new("a", AB, "3"),
        )
    finally:
        writer.set_trace_callback(None)
    assert seqs(outcomes) == [2, 1, 1, None, 3, 2, 2, 4]
    assert [o.duplicate for o in outcomes if isinstance(o, Appended)] == [
        False,
        False,
        True,
        False,
        True,
        False,
        False,
    ]
    updates = [s for s in statements if s.startswith("UPDATE conversations SET max_seq")]
    assert len(updates) == 2  # AB and GROUP, once each
    assert sum(s.startswith("UPDATE counters") for s in statements) == 1
    assert await count(db, "SELECT max_seq FROM conversations WHERE cid = ?", AB) == 4
    assert await count(db, "SELECT max_seq FROM conversations WHERE cid = ?", GROUP) == 2
    assert await count(db, "SELECT COUNT(*) FROM messages WHERE cid = ?", AB) == 4
    # The next batch goes on from there.
    assert seqs(await append(store, new("b", AB, "5"), new("a", GROUP, "3"))) == [5, 3]
