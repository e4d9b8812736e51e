"""MessageStore conformance on every backend: seqs, dedupe, refusals, pull, sync, read."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from sandcat.errors import Forbidden, StoreUnavailable
from sandcat.store.messages import Appended, MessageStore, NewMessage, Refused
from tests.store.backend import Backend, make_user

AB = "d:a:b"
AC = "d:a:c"
GROUP = "g:team"
NOW = 1_700_000_000_000


@pytest.fixture
async def db(backend: Backend) -> Backend:
    await backend.users(*(make_user(u, disabled=u == "z") for u in ("a", "b", "c", "e", "z")))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    await backend.open_conversation(GROUP, "group", ("a", "b", "c"))
    return backend


@pytest.fixture
def store(db: Backend) -> MessageStore:
    return db.messages


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
    store: MessageStore, *batch: NewMessage, open_direct: bool = False
) -> list[Appended | Refused]:
    return await store.append(batch, now_ms=NOW, open_direct=open_direct)


def seqs(outcomes: Sequence[Appended | Refused]) -> list[int | None]:
    return [o.message.seq if isinstance(o, Appended) else None for o in outcomes]


async def count(db: Backend, sql: str, *args: object) -> int:
    return int(await db.scalar(sql, *args))


async def test_seqs_are_contiguous_per_conversation_within_and_across_batches(
    store: MessageStore,
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


async def test_stored_message_keeps_every_field(store: MessageStore) -> None:
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


async def test_members_are_listed_for_delivery(store: MessageStore) -> None:
    with trio.fail_after(5):
        direct, group = await append(store, new("a", AB, "1"), new("c", GROUP, "1"))
        assert isinstance(direct, Appended)
        assert isinstance(group, Appended)
        assert sorted(direct.members) == ["a", "b"]
        assert sorted(group.members) == ["a", "b", "c"]


async def test_a_resend_in_a_later_batch_returns_the_original(
    store: MessageStore, db: Backend
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
    store: MessageStore, db: Backend
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
    store: MessageStore, db: Backend
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


async def test_a_member_who_may_not_send_is_refused(store: MessageStore, db: Backend) -> None:
    with trio.fail_after(5):
        await db.open_conversation(GROUP, "group", ("c",), now_ms=2, can_send=False)
        outcomes = await append(store, new("c", GROUP, "1"), new("b", GROUP, "1"))
        assert isinstance(outcomes[0], Refused)
        assert seqs(outcomes) == [None, 1]
        # A member who may not send still reads and still receives.
        assert isinstance(outcomes[1], Appended)
        assert "c" in outcomes[1].members
        assert [m.seq for m in (await store.pull("c", GROUP, after=0, limit=5)).messages] == [1]


async def test_open_direct_opens_a_conversation_between_existing_users(
    store: MessageStore, db: Backend
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
    store: MessageStore, db: Backend, cid: str, blocker: str | None, blocked: str | None
) -> None:
    if blocker is not None:
        assert blocked is not None
        await db.block(blocker, blocked)
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


async def test_pull_pages_forwards(store: MessageStore) -> None:
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


async def test_pull_starts_at_min_seq(store: MessageStore, db: Backend) -> None:
    with trio.fail_after(5):
        await append(store, *(new("a", GROUP, str(i)) for i in range(5)))
        # Retention moved the floor (G7): seqs below min_seq are gone and never served.
        await db.execute("UPDATE conversations SET min_seq = 4 WHERE cid = ?", GROUP)
        page = await store.pull("b", GROUP, after=0, limit=10)
        assert page.min_seq == 4
        assert [m.seq for m in page.messages] == [4, 5]


async def test_pull_by_a_non_member_is_forbidden(store: MessageStore) -> None:
    with trio.fail_after(5):
        await append(store, new("a", AB, "1"))
        with pytest.raises(Forbidden):
            await store.pull("c", AB, after=0, limit=10)
        with pytest.raises(Forbidden):
            await store.pull("a", "g:nothing", after=0, limit=10)


async def test_conversations_since_a_version(store: MessageStore) -> None:
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
        # Reading changes the reader's view, and in a direct conversation the
        # peer's (read receipts, on by default); in a group only the reader's.
        await store.mark_read("a", AB, 1, now_ms=NOW)
        states, v2 = await store.conversations("a", since=v1)
        assert [(s.cid, s.read_seq) for s in states] == [(AB, 1)]
        assert v2 > v1
        assert [
            (s.cid, s.peer_read_seq) for s in (await store.conversations("b", since=v1))[0]
        ] == [(AB, 1)]
        await append(store, new("b", GROUP, "1"))
        _, v3 = await store.conversations("b", since=None)
        await store.mark_read("a", GROUP, 1, now_ms=NOW)
        assert (await store.conversations("b", since=v3))[0] == []
        # A stranger has nothing.
        assert (await store.conversations("e", since=None))[0] == []


async def test_mark_read_never_goes_backwards_and_is_clamped(store: MessageStore) -> None:
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


async def test_group_read_marks_have_no_observers(store: MessageStore) -> None:
    with trio.fail_after(5):
        await append(store, new("b", GROUP, "1"))
        mark = await store.mark_read("a", GROUP, 1, now_ms=NOW)
        assert (mark.seq, mark.advanced, mark.observers) == (1, True, ())
        with pytest.raises(Forbidden):
            await store.mark_read("e", GROUP, 1, now_ms=NOW)


async def test_a_closed_database_is_unavailable(store: MessageStore, db: Backend) -> None:
    with trio.fail_after(5):
        await db.db.aclose()
        with pytest.raises(StoreUnavailable):
            await append(store, new("a", AB, "1"))
        with pytest.raises(StoreUnavailable):
            await store.pull("a", AB, after=0, limit=1)
        with pytest.raises(StoreUnavailable):
            await store.conversations("a", since=None)
        with pytest.raises(StoreUnavailable):
            await store.mark_read("a", AB, 1, now_ms=NOW)


async def test_an_empty_batch_stores_nothing(store: MessageStore, db: Backend) -> None:
    with trio.fail_after(5):
        assert await store.append([], now_ms=NOW, open_direct=False) == []
        assert await count(db, "SELECT COUNT(*) FROM messages") == 0


async def test_a_big_batch_keeps_order_dedupe_and_refusals(store: MessageStore) -> None:
    with trio.fail_after(10):
        batch = [new("a" if i % 3 else "b", GROUP if i % 2 else AB, str(i)) for i in range(300)]
        batch += [new("e", AB, "x"), batch[5], batch[6]]
        outcomes = await store.append(batch, now_ms=NOW, open_direct=False)
        stored = [o for o in outcomes[:300] if isinstance(o, Appended)]
        assert len(stored) == 300
        for cid in (AB, GROUP):
            got = [o.message.seq for o in stored if o.message.cid == cid]
            assert got == list(range(1, len(got) + 1))
        assert isinstance(outcomes[300], Refused)
        again = outcomes[301:]
        assert all(isinstance(o, Appended) and o.duplicate for o in again)
        assert [o.message for o in again] == [outcomes[5].message, outcomes[6].message]  # type: ignore[union-attr]
