"""Recall, edit, forward, history, lookup by mid and hiding, on every backend."""

from __future__ import annotations

import msgpack
import pytest

from sandcat.errors import BadRequest, Forbidden, NotFound
from sandcat.protocol import Kind
from sandcat.store.history import HistoryStore
from sandcat.store.messages import Appended, NewMessage, Origin, Refused, StoredMessage
from sandcat.store.postgres.database import at
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql.history import SqlHistoryStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import Backend, make_user

AB = "d:a:b"
GROUP = "g:team"
NOW = 1_700_000_000_000
WINDOW = 120_000
TEXT = msgpack.packb({"text": "hi"})


@pytest.fixture
async def db(backend: Backend) -> Backend:
    await backend.users(*(make_user(u) for u in ("a", "b", "c", "o", "x")))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    await backend.open_conversation(GROUP, "group", ("a", "b", "o"))
    created: object = 1 if backend.kind == "sqlite" else at(1)
    await backend.execute(
        "INSERT INTO groups (id, name, owner, max_members, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        "team",
        "team",
        "o",
        10,
        created,
        created,
    )
    for user, role in (("a", "member"), ("b", "admin"), ("o", "owner")):
        await backend.execute(
            "INSERT INTO group_members (group_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
            "team",
            user,
            role,
            created,
        )
    return backend


@pytest.fixture
def history(db: Backend) -> HistoryStore:
    return SqlHistoryStore(db.db, SQLITE if db.kind == "sqlite" else POSTGRES)


def text(sender: str, cid: str, cmid: str, **extra: object) -> NewMessage:
    return NewMessage(
        sender=sender,
        device="d",
        cid=cid,
        cmid=cmid,
        kind=Kind.TEXT,
        body=TEXT,
        **extra,  # type: ignore[arg-type]
    )


def recall(sender: str, cid: str, cmid: str, seq: int) -> NewMessage:
    return NewMessage(
        sender=sender,
        device="d",
        cid=cid,
        cmid=cmid,
        kind=Kind.RECALL,
        body=msgpack.packb({"seq": seq}),
        target=seq,
        window_ms=WINDOW,
    )


def edit(sender: str, cid: str, cmid: str, seq: int, new_text: str) -> NewMessage:
    body = {"text": new_text}
    return NewMessage(
        sender=sender,
        device="d",
        cid=cid,
        cmid=cmid,
        kind=Kind.EDIT,
        body=msgpack.packb({"seq": seq, "body": body}),
        target=seq,
        window_ms=WINDOW,
        replacement=msgpack.packb(body),
    )


async def append(db: Backend, *batch: NewMessage, now_ms: int = NOW) -> list[Appended | Refused]:
    return await db.messages.append(batch, now_ms=now_ms, open_direct=False)


async def one(history: HistoryStore, user: str, cid: str, seq: int) -> StoredMessage:
    page = await history.history(user, cid, before=None, after=seq - 1, limit=1)
    assert page.messages[0].seq == seq
    return page.messages[0]


def codes(outcomes: list[Appended | Refused]) -> list[object]:
    return [o.message.seq if isinstance(o, Appended) else o.code for o in outcomes]


async def test_recall_takes_a_seq_and_leaves_a_tombstone(
    db: Backend, history: HistoryStore
) -> None:
    await append(db, text("a", AB, "m1", mentions=("b",)))

    outcomes = await append(db, recall("a", AB, "r1", 1), now_ms=NOW + WINDOW)

    assert codes(outcomes) == [2]
    target = await one(history, "b", AB, 1)
    assert (target.recalled, target.mentions, msgpack.unpackb(target.body)) == (True, None, None)
    event = await one(history, "b", AB, 2)
    assert (event.kind, msgpack.unpackb(event.body), event.recalled) == (
        Kind.RECALL,
        {"seq": 1},
        False,
    )


async def test_recall_refusals_take_no_seq(db: Backend, history: HistoryStore) -> None:
    await append(db, text("a", AB, "m1"), text("a", GROUP, "g1"), text("o", GROUP, "g2"))

    outcomes = await append(
        db,
        recall("b", AB, "x1", 1),  # someone else's, in a direct conversation
        recall("a", AB, "x2", 1),  # too late
        recall("a", AB, "x3", 9),  # no such message
        recall("a", GROUP, "x4", 2),  # a member recalling the owner's
        recall("c", AB, "x5", 1),  # not a member
        now_ms=NOW + WINDOW + 1,
    )

    assert codes(outcomes) == ["forbidden", "forbidden", "bad_request", "forbidden", "forbidden"]
    page = await history.history("a", AB, before=None, after=None, limit=10)
    assert [m.seq for m in page.messages] == [1]
    assert page.max_seq == 1


async def test_owner_and_admin_recall_any_group_message_at_any_time(
    db: Backend, history: HistoryStore
) -> None:
    await append(db, text("a", GROUP, "g1"), text("o", GROUP, "g2"), text("a", GROUP, "g3"))

    outcomes = await append(
        db,
        recall("b", GROUP, "r1", 1),
        recall("o", GROUP, "r2", 3),
        recall("b", GROUP, "r3", 2),
        now_ms=NOW + 10 * WINDOW,
    )

    assert codes(outcomes) == [4, 5, 6]
    assert [(await one(history, "a", GROUP, s)).recalled for s in (1, 2, 3)] == [True] * 3


async def test_a_second_recall_in_the_same_batch_is_refused(db: Backend) -> None:
    await append(db, text("a", AB, "m1"))

    outcomes = await append(
        db, recall("a", AB, "r1", 1), recall("a", AB, "r2", 1), edit("a", AB, "e", 1, "x")
    )

    assert codes(outcomes) == [2, "bad_request", "bad_request"]


async def test_a_recall_resent_returns_the_first_and_recall_events_cannot_be_revised(
    db: Backend,
) -> None:
    await append(db, text("a", AB, "m1"))
    first = await append(db, recall("a", AB, "r1", 1))

    again = await append(db, recall("a", AB, "r1", 1), recall("a", AB, "r2", 2))

    assert isinstance(again[0], Appended)
    assert again[0].duplicate
    assert isinstance(first[0], Appended)
    assert again[0].message == first[0].message
    assert codes(again)[1] == "bad_request"


async def test_edit_replaces_the_body_and_sets_edited_at(
    db: Backend, history: HistoryStore
) -> None:
    await append(db, text("a", AB, "m1"))

    outcomes = await append(db, edit("a", AB, "e1", 1, "hello"), now_ms=NOW + 1000)

    assert codes(outcomes) == [2]
    target = await one(history, "b", AB, 1)
    assert msgpack.unpackb(target.body) == {"text": "hello"}
    assert (target.edited_at, target.ts) == (NOW + 1000, NOW)
    pulled = await db.messages.pull("b", AB, after=0, limit=5)
    assert pulled.messages[0] == target


async def test_edit_refusals_take_no_seq(db: Backend) -> None:
    emoji = NewMessage(
        sender="a", device="d", cid=AB, cmid="e", kind=Kind.EMOJI, body=msgpack.packb({})
    )
    await append(db, text("a", AB, "m1"), emoji)

    outcomes = await append(
        db,
        edit("b", AB, "x1", 1, "no"),
        edit("a", AB, "x2", 2, "no"),
        edit("a", AB, "x3", 1, "late"),
        edit("o", GROUP, "x4", 1, "no"),
        now_ms=NOW + WINDOW + 1,
    )

    assert codes(outcomes) == ["forbidden", "bad_request", "forbidden", "bad_request"]


async def test_forward_origin_is_stored_and_read_back(db: Backend, history: HistoryStore) -> None:
    origin = Origin(AB, 1, "a")
    await append(db, text("a", AB, "m1"), text("o", GROUP, "f1", forward=origin))

    stored = await one(history, "b", GROUP, 1)

    assert stored.forward == origin
    assert (await db.messages.pull("o", GROUP, after=0, limit=1)).messages[0].forward == origin


async def test_history_pages_in_both_directions(db: Backend, history: HistoryStore) -> None:
    await append(db, *(text("a", AB, f"m{i}") for i in range(1, 8)))

    latest = await history.history("b", AB, before=None, after=None, limit=3)
    older = await history.history("b", AB, before=5, after=None, limit=3)
    first = await history.history("b", AB, before=2, after=None, limit=3)
    newer = await history.history("b", AB, before=None, after=4, limit=2)
    rest = await history.history("b", AB, before=None, after=6, limit=2)

    assert ([m.seq for m in latest.messages], latest.more) == ([5, 6, 7], True)
    assert ([m.seq for m in older.messages], older.more) == ([2, 3, 4], True)
    assert ([m.seq for m in first.messages], first.more) == ([1], False)
    assert ([m.seq for m in newer.messages], newer.more) == ([5, 6], True)
    assert ([m.seq for m in rest.messages], rest.more) == ([7], False)
    assert (latest.min_seq, latest.max_seq) == (1, 7)
    with pytest.raises(Forbidden):
        await history.history("c", AB, before=None, after=None, limit=3)


async def test_history_respects_min_seq(db: Backend, history: HistoryStore) -> None:
    await append(db, *(text("a", AB, f"m{i}") for i in range(1, 5)))
    await db.execute("UPDATE conversations SET min_seq = 3 WHERE cid = ?", AB)

    page = await history.history("b", AB, before=None, after=None, limit=10)
    after = await history.history("b", AB, before=None, after=0, limit=10)

    assert [m.seq for m in page.messages] == [3, 4]
    assert [m.seq for m in after.messages] == [3, 4]
    old = await append(db, recall("a", AB, "r", 1))
    assert codes(old) == ["bad_request"]


async def test_lookup_by_mid_only_for_those_who_may_see_it(
    db: Backend, history: HistoryStore
) -> None:
    outcomes = await append(db, text("a", AB, "m1"), text("a", AB, "m2"))
    mids = [o.message.mid for o in outcomes if isinstance(o, Appended)]

    found = await history.message("b", mids[1])

    assert (found.cid, found.seq, found.cmid) == (AB, 2, "m2")
    for user, mid in (("c", mids[0]), ("b", "nope")):
        with pytest.raises(NotFound):
            await history.message(user, mid)
    await history.hide("b", AB, [1], now_ms=NOW)
    with pytest.raises(NotFound):
        await history.message("b", mids[0])
    await db.execute("UPDATE conversations SET min_seq = 3 WHERE cid = ?", AB)
    with pytest.raises(NotFound):
        await history.message("a", mids[1])


async def test_hide_is_per_user_idempotent_and_checked(db: Backend, history: HistoryStore) -> None:
    await append(db, *(text("a", AB, f"m{i}") for i in range(1, 5)))

    await history.hide("b", AB, [2, 3, 2], now_ms=NOW)
    await history.hide("b", AB, [3], now_ms=NOW)

    assert [m.seq for m in (await db.messages.pull("b", AB, after=0, limit=10)).messages] == [1, 4]
    page = await history.history("b", AB, before=None, after=None, limit=2)
    assert ([m.seq for m in page.messages], page.more) == ([1, 4], False)
    assert len((await db.messages.pull("a", AB, after=0, limit=10)).messages) == 4
    with pytest.raises(BadRequest):
        await history.hide("b", AB, [1, 5], now_ms=NOW)
    with pytest.raises(Forbidden):
        await history.hide("c", AB, [1], now_ms=NOW)
    assert len((await db.messages.pull("b", AB, after=0, limit=10)).messages) == 2


async def test_roles_of_members(db: Backend, history: HistoryStore) -> None:
    assert await history.roles(GROUP, ["a", "b", "o", "c"]) == {
        "a": "member",
        "b": "admin",
        "o": "owner",
    }
    assert await history.roles(AB, ["a", "c"]) == {"a": "member"}
