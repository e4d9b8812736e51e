"""Conversation rows (opened by friendships and groups, advanced by the message
store) behave the same on SQLite and PostgreSQL: opening is idempotent and keeps
history and read state, sending rights follow ``can_send``, and every change
gets a SYNC version above every earlier one."""

from __future__ import annotations

from sandcat.store.messages import Appended, NewMessage, Refused
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql import conversations
from sandcat.store.sql._tx import Tx
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import Backend, make_user

AB = "d:a:b"
NOW = 1_700_000_000_000


async def set_can_send(backend: Backend, cid: str, user: str, *, can_send: bool) -> None:
    dialect = SQLITE if backend.kind == "sqlite" else POSTGRES

    def change(conn: object) -> None:
        tx = Tx(conn, dialect)
        conversations.set_can_send(
            tx, cid=cid, users=[user], can_send=can_send, version=tx.bump_version()
        )

    await backend.db.write(change)  # type: ignore[arg-type]


async def send(backend: Backend, cmid: str) -> Appended | Refused:
    [outcome] = await backend.messages.append(
        [NewMessage("a", "a-d", AB, cmid, 1, b"\xa1x")], now_ms=NOW, open_direct=False
    )
    return outcome


async def test_opening_again_keeps_history_and_read_state(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    assert isinstance(await send(backend, "m1"), Appended)
    await backend.messages.mark_read("b", AB, 1, now_ms=NOW)
    _, before = await backend.messages.conversations("b", since=None)
    await backend.open_conversation(AB, "direct", ("a", "b"), now_ms=NOW + 1)
    changed, after = await backend.messages.conversations("b", since=before)
    assert after > before
    [state] = changed
    assert (state.cid, state.kind, state.max_seq, state.min_seq, state.read_seq) == (
        AB,
        "direct",
        1,
        1,
        1,
    )


async def test_sending_follows_can_send_and_refusals_take_no_seq(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    _, v0 = await backend.messages.conversations("a", since=None)
    await set_can_send(backend, AB, "a", can_send=False)
    _, v1 = await backend.messages.conversations("a", since=v0)
    assert v1 > v0
    assert isinstance(await send(backend, "m1"), Refused)
    await set_can_send(backend, AB, "a", can_send=True)
    sent = await send(backend, "m2")
    assert isinstance(sent, Appended)
    assert sent.message.seq == 1


async def test_reopening_restores_sending_rights(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"), can_send=False)
    assert isinstance(await send(backend, "m1"), Refused)
    await backend.open_conversation(AB, "direct", ("a", "b"))
    assert isinstance(await send(backend, "m2"), Appended)


async def test_a_stranger_sees_no_conversation(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"), make_user("z"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    assert (await backend.messages.conversations("z", since=None))[0] == []


async def test_a_since_from_the_future_syncs_everything(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"), make_user("c"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    await backend.open_conversation("d:a:c", "direct", ("a", "c"))
    everything, version = await backend.messages.conversations("a", since=None)
    assert len(everything) == 2
    # A client holding a version from before a database restore.
    states, after = await backend.messages.conversations("a", since=version + 1000)
    assert (states, after) == (everything, version)


# -- member rows change between two sends (the SQLite append keeps them between batches) --


async def test_sending_rights_changed_right_after_a_send_apply_to_the_next_send(
    backend: Backend,
) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    assert isinstance(await send(backend, "m1"), Appended)
    await set_can_send(backend, AB, "a", can_send=False)
    assert isinstance(await send(backend, "m2"), Refused)
    await set_can_send(backend, AB, "a", can_send=True)
    sent = await send(backend, "m3")
    assert isinstance(sent, Appended)
    assert sent.message.seq == 2


async def test_a_member_added_right_after_a_send_gets_the_next_message(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"), make_user("c"))
    await backend.open_conversation("g:x", "group", ("a", "b"))
    first = await backend.messages.append(
        [NewMessage("a", "a-d", "g:x", "m1", 1, b"\xa1x")], now_ms=NOW, open_direct=False
    )
    assert isinstance(first[0], Appended)
    assert sorted(first[0].members) == ["a", "b"]
    await backend.open_conversation("g:x", "group", ("a", "b", "c"))
    second = await backend.messages.append(
        [NewMessage("a", "a-d", "g:x", "m2", 1, b"\xa1x")], now_ms=NOW, open_direct=False
    )
    assert isinstance(second[0], Appended)
    assert sorted(second[0].members) == ["a", "b", "c"]


async def test_a_conversation_hidden_right_after_a_send_is_shown_again_by_the_next(
    backend: Backend,
) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    assert isinstance(await send(backend, "m1"), Appended)
    hidden = "SELECT hidden FROM conversation_members WHERE user_id = 'b' AND cid = ?"
    assert not await backend.scalar(hidden, AB)
    await backend.execute(
        "UPDATE conversation_members SET hidden = ? WHERE user_id = 'b' AND cid = ?",
        1 if backend.kind == "sqlite" else True,
        AB,
    )
    assert await backend.scalar(hidden, AB)
    assert isinstance(await send(backend, "m2"), Appended)
    assert not await backend.scalar(hidden, AB)
    await backend.execute(
        "UPDATE conversation_members SET hidden = ? WHERE user_id = 'b' AND cid = ?",
        1 if backend.kind == "sqlite" else True,
        AB,
    )
    assert isinstance(await send(backend, "m3"), Appended)
    assert not await backend.scalar(hidden, AB)


async def test_a_resend_after_sending_rights_ended_still_gets_its_original(
    backend: Backend,
) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    original = await send(backend, "m1")
    assert isinstance(original, Appended)
    await set_can_send(backend, AB, "a", can_send=False)
    resent = await send(backend, "m1")
    assert isinstance(resent, Appended)
    assert resent.duplicate
    assert resent.message == original.message
