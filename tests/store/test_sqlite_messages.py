"""SqliteMessageStore over a real SQLite file: seqs, dedupe, refusals, pull, sync, read."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import trio

from sandcat.errors import Forbidden, StoreUnavailable
from sandcat.store.messages import Appended, NewMessage, Refused
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.conversations import open_conversation
from sandcat.store.sqlite.messages import SqliteMessageStore

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
            open_conversation(conn, cid=AB, kind="direct", members=("a", "b"), now_ms=1)
            open_conversation(conn, cid=GROUP, kind="group", members=("a", "b", "c"), now_ms=1)

        await database.write(scene)
        yield database


@pytest.fixture
def store(db: Database) -> SqliteMessageStore:
    return SqliteMessageStore(db)


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
    store: SqliteMessageStore, *batch: NewMessage, open_direct: bool = False
) -> list[Appended | Refused]:
    return await store.append(batch, now_ms=NOW, open_direct=open_direct)


def seqs(outcomes: Sequence[Appended | Refused]) -> list[int | None]:
    return [o.message.seq if isinstance(o, Appended) else None for o in outcomes]


async def count(db: Database, sql: str, *args: object) -> int:
    return await db.read(lambda conn: int(conn.execute(sql, args).fetchone()[0]))


async def test_seqs_are_contiguous_per_conversation_within_and_across_batches(
    store: SqliteMessageStore,
) -> None:
    with trio.fail_after(5):
        first = await append(
            store, new("a", AB, "1"), new("a", GROUP, "1"), new("b", AB, "1"), new("c", GROUP, "9")
        )
        assert seqs(first) == [1, 1, 2, 2]
        second = await append(store, new("b", GROUP, "1"), new("a", AB, "2"))
        assert seqs(second) == [3, 3]
        page = await store.pull("a", AB, after=0, limit=10)
        assert [m.seq for m in page.messages] == [1, 2, 3]
        assert [m.cmid for m in page.messages] == ["1", "1", "2"]
        assert page.max_seq == 3


async def test_stored_message_keeps_every_field(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        [outcome] = await append(
            store, new("a", GROUP, "m1", body=b"\x81\xa1t\xa2hi", reply_to=4, mentions=("b", "c"))
        )
        assert isinstance(outcome, Appended)
        assert not outcome.duplicate
        stored = outcome.message
        assert (stored.sender, stored.device, stored.cmid, stored.ts) == ("a", "a-phone", "m1", NOW)
        [pulled] = (await store.pull("b", GROUP, after=0, limit=5)).messages
        assert pulled == stored
        assert pulled.reply_to == 4
        assert pulled.mentions == ("b", "c")
        assert pulled.body == b"\x81\xa1t\xa2hi"


async def test_members_are_listed_for_delivery(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        direct, group = await append(store, new("a", AB, "1"), new("c", GROUP, "1"))
        assert isinstance(direct, Appended)
        assert isinstance(group, Appended)
        assert sorted(direct.members) == ["a", "b"]
        assert sorted(group.members) == ["a", "b", "c"]


async def test_a_resend_in_a_later_batch_returns_the_original(
    store: SqliteMessageStore, db: Database
) -> None:
    with trio.fail_after(5):
        [original] = await append(store, new("a", AB, "x"))
        [again] = await append(store, new("a", AB, "x", body=b"\xa5other"))
        assert isinstance(original, Appended)
        assert isinstance(again, Appended)
        assert again.duplicate
        assert again.members == ()
        assert again.message == original.message
        assert await count(db, "SELECT COUNT(*) FROM messages") == 1
        # The same cmid from another sender, or in another conversation, is a new message.
        other = await append(store, new("b", AB, "x"), new("a", GROUP, "x"))
        assert seqs(other) == [2, 1]
        assert not any(o.duplicate for o in other if isinstance(o, Appended))


async def test_a_resend_within_one_batch_returns_the_first(
    store: SqliteMessageStore, db: Database
) -> None:
    with trio.fail_after(5):
        first, second, third = await append(
            store, new("a", AB, "x"), new("a", AB, "x"), new("a", AB, "y")
        )
        assert isinstance(first, Appended)
        assert isinstance(second, Appended)
        assert not first.duplicate
        assert second.duplicate
        assert second.members == ()
        assert second.message == first.message
        assert seqs([first, second, third]) == [1, 1, 2]
        assert await count(db, "SELECT COUNT(*) FROM messages") == 2


async def test_a_non_member_is_refused_and_consumes_no_seq(
    store: SqliteMessageStore, db: Database
) -> None:
    with trio.fail_after(5):
        outcomes = await append(
            store, new("a", AB, "1"), new("c", AB, "1"), new("e", GROUP, "1"), new("b", AB, "2")
        )
        assert seqs(outcomes) == [1, None, None, 2]
        refused = outcomes[1]
        assert isinstance(refused, Refused)
        assert refused.code == "forbidden"
        assert isinstance(outcomes[2], Refused)
        # The next stored send takes the next seq: no hole.
        assert seqs(await append(store, new("a", AB, "3"))) == [3]
        assert await count(db, "SELECT COUNT(*) FROM messages WHERE sender IN ('c', 'e')") == 0


async def test_a_member_who_may_not_send_is_refused(
    store: SqliteMessageStore, db: Database
) -> None:
    def mute_c(conn: sqlite3.Connection) -> None:
        open_conversation(conn, cid=GROUP, kind="group", members=("c",), now_ms=2, can_send=False)

    with trio.fail_after(5):
        await db.write(mute_c)
        outcomes = await append(store, new("c", GROUP, "1"), new("b", GROUP, "1"))
        assert isinstance(outcomes[0], Refused)
        assert seqs(outcomes) == [None, 1]
        # A member who may not send still reads and still receives.
        assert isinstance(outcomes[1], Appended)
        assert "c" in outcomes[1].members
        assert [m.seq for m in (await store.pull("c", GROUP, after=0, limit=5)).messages] == [1]


async def test_open_direct_opens_a_conversation_between_existing_users(
    store: SqliteMessageStore, db: Database
) -> None:
    with trio.fail_after(5):
        # Without open_direct a stranger's direct cid is refused.
        assert isinstance((await append(store, new("a", AC, "1")))[0], Refused)
        outcomes = await append(store, new("a", AC, "1"), new("c", AC, "2"), open_direct=True)
        assert seqs(outcomes) == [1, 2]
        assert isinstance(outcomes[0], Appended)
        assert sorted(outcomes[0].members) == ["a", "c"]
        [state] = [s for s in (await store.conversations("c", since=None))[0] if s.cid == AC]
        assert (state.kind, state.max_seq) == ("direct", 2)
        assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE cid = ?", AC) == 2


@pytest.mark.parametrize(
    ("cid", "blocker", "blocked"),
    [("d:a:c", "a", "c"), ("d:a:c", "c", "a"), ("d:a:z", None, None), ("d:a:nobody", None, None)],
)
async def test_open_direct_is_refused_when_blocked_or_the_peer_cannot_receive(
    store: SqliteMessageStore, db: Database, cid: str, blocker: str | None, blocked: str | None
) -> None:
    if blocker is not None:
        await db.write(
            lambda conn: conn.execute(
                "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, 1)",
                (blocker, blocked),
            )
        )
    with trio.fail_after(5):
        outcomes = await append(store, new("a", cid, "1"), new("a", AB, "1"), open_direct=True)
        assert isinstance(outcomes[0], Refused)
        assert outcomes[0].code == "forbidden"
        assert seqs(outcomes) == [None, 1]
        assert await count(db, "SELECT COUNT(*) FROM conversations WHERE cid = ?", cid) == 0
        # A direct cid the sender is not part of is never opened.
        assert isinstance(
            (await append(store, new("a", "d:b:c", "1"), open_direct=True))[0], Refused
        )


async def test_pull_pages_forwards(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        await append(store, *(new("a", GROUP, str(i)) for i in range(5)))
        page = await store.pull("b", GROUP, after=0, limit=2)
        assert [m.seq for m in page.messages] == [1, 2]
        assert page.more
        assert (page.min_seq, page.max_seq) == (1, 5)
        page = await store.pull("b", GROUP, after=2, limit=3)
        assert [m.seq for m in page.messages] == [3, 4, 5]
        assert not page.more
        page = await store.pull("b", GROUP, after=5, limit=3)
        assert page.messages == ()
        assert not page.more
        empty = await store.pull("a", AB, after=0, limit=10)
        assert (empty.messages, empty.more, empty.min_seq, empty.max_seq) == ((), False, 1, 0)


async def test_pull_starts_at_min_seq(store: SqliteMessageStore, db: Database) -> None:
    with trio.fail_after(5):
        await append(store, *(new("a", GROUP, str(i)) for i in range(5)))
        # Retention moved the floor (G7): seqs below min_seq are gone and never served.
        await db.write(
            lambda conn: conn.execute(
                "UPDATE conversations SET min_seq = 4 WHERE cid = ?", (GROUP,)
            )
        )
        page = await store.pull("b", GROUP, after=0, limit=10)
        assert page.min_seq == 4
        assert [m.seq for m in page.messages] == [4, 5]


async def test_pull_by_a_non_member_is_forbidden(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        await append(store, new("a", AB, "1"))
        with pytest.raises(Forbidden):
            await store.pull("c", AB, after=0, limit=10)
        with pytest.raises(Forbidden):
            await store.pull("a", "g:nothing", after=0, limit=10)


async def test_conversations_since_a_version(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        states, v0 = await store.conversations("a", since=None)
        assert {s.cid for s in states} == {AB, GROUP}
        assert all(s.last is None and s.max_seq == 0 for s in states)
        # Nothing changed since v0.
        assert (await store.conversations("a", since=v0)) == ([], v0)
        [sent] = await append(store, new("b", AB, "1"))
        states, v1 = await store.conversations("a", since=v0)
        assert v1 > v0
        assert [s.cid for s in states] == [AB]
        [state] = states
        assert isinstance(sent, Appended)
        assert state.last == sent.message
        assert (state.max_seq, state.min_seq, state.read_seq) == (1, 1, 0)
        assert (state.muted, state.pinned) == (False, False)
        # c is not in AB: its view is unchanged.
        assert (await store.conversations("c", since=v0))[0] == []
        # Reading changes only the reader's view.
        await store.mark_read("a", AB, 1, now_ms=NOW)
        states, v2 = await store.conversations("a", since=v1)
        assert [(s.cid, s.read_seq) for s in states] == [(AB, 1)]
        assert v2 > v1
        assert (await store.conversations("b", since=v1))[0] == []
        # A stranger has nothing.
        assert (await store.conversations("e", since=None))[0] == []


async def test_mark_read_never_goes_backwards_and_is_clamped(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        await append(store, *(new("b", AB, str(i)) for i in range(3)))
        mark = await store.mark_read("a", AB, 2, now_ms=NOW)
        assert (mark.seq, mark.advanced, mark.observers) == (2, True, ("b",))
        mark = await store.mark_read("a", AB, 1, now_ms=NOW)
        assert (mark.seq, mark.advanced, mark.observers) == (2, False, ())
        mark = await store.mark_read("a", AB, 99, now_ms=NOW)
        assert (mark.seq, mark.advanced) == (3, True)
        mark = await store.mark_read("a", AB, 99, now_ms=NOW)
        assert (mark.seq, mark.advanced) == (3, False)


async def test_group_read_marks_have_no_observers(store: SqliteMessageStore) -> None:
    with trio.fail_after(5):
        await append(store, new("b", GROUP, "1"))
        mark = await store.mark_read("a", GROUP, 1, now_ms=NOW)
        assert (mark.seq, mark.advanced, mark.observers) == (1, True, ())
        with pytest.raises(Forbidden):
            await store.mark_read("e", GROUP, 1, now_ms=NOW)


async def test_a_failing_transaction_stores_nothing_and_consumes_no_seq(
    store: SqliteMessageStore, db: Database
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


async def test_a_closed_database_is_unavailable(store: SqliteMessageStore, db: Database) -> None:
    with trio.fail_after(5):
        await db.aclose()
        with pytest.raises(StoreUnavailable):
            await append(store, new("a", AB, "1"))
        with pytest.raises(StoreUnavailable):
            await store.pull("a", AB, after=0, limit=1)
        with pytest.raises(StoreUnavailable):
            await store.conversations("a", since=None)
        with pytest.raises(StoreUnavailable):
            await store.mark_read("a", AB, 1, now_ms=NOW)
