"""ConversationStore conformance, and the conversation list it shapes, on every backend:
unread counts, mentions, hidden, cleared history, settings versions, readers, receipts."""

from __future__ import annotations

import pytest
import trio

from sandcat.errors import Forbidden
from sandcat.store.conversations import ConversationStore, SettingsChange
from sandcat.store.messages import Appended, ConversationState, MessageStore, NewMessage
from tests.store.backend import Backend, make_user

AB = "d:a:b"
GROUP = "g:team"
NOW = 1_700_000_000_000


@pytest.fixture
async def db(backend: Backend) -> Backend:
    await backend.users(*(make_user(u) for u in ("a", "b", "c", "e")))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    await backend.open_conversation(GROUP, "group", ("a", "b", "c"))
    return backend


@pytest.fixture
def store(db: Backend) -> ConversationStore:
    return db.conversations


@pytest.fixture
def messages(db: Backend) -> MessageStore:
    return db.messages


def new(sender: str, cid: str, cmid: str, mentions: tuple[str, ...] | None = None) -> NewMessage:
    return NewMessage(
        sender=sender,
        device="phone",
        cid=cid,
        cmid=cmid,
        kind=1,
        body=b"\x81\xa4text\xa2hi",
        mentions=mentions,
    )


async def send(messages: MessageStore, *batch: NewMessage) -> list[int]:
    outcomes = await messages.append(batch, now_ms=NOW, open_direct=False)
    return [o.message.seq for o in outcomes if isinstance(o, Appended)]


async def conv(messages: MessageStore, user: str, cid: str) -> ConversationState:
    states, _ = await messages.conversations(user, since=None)
    [state] = [s for s in states if s.cid == cid]
    return state


async def test_unread_counts_what_others_sent_after_my_read_seq(messages: MessageStore) -> None:
    with trio.fail_after(5):
        assert await send(messages, new("a", AB, "1"), new("a", AB, "2")) == [1, 2]
        assert ((await conv(messages, "b", AB)).unread, (await conv(messages, "a", AB)).unread) == (
            2,
            0,
        )
        # Sending moves the sender's read seq to their message: nothing is unread to them.
        assert (await conv(messages, "a", AB)).read_seq == 2
        await messages.mark_read("b", AB, 1, now_ms=NOW)
        assert (await conv(messages, "b", AB)).unread == 1
        await send(messages, new("b", AB, "1"))
        b, a = await conv(messages, "b", AB), await conv(messages, "a", AB)
        assert (b.read_seq, b.unread, a.unread, a.read_seq) == (3, 0, 1, 2)
        assert b.last is not None
        assert b.last.seq == 3


async def test_a_batch_advances_each_senders_read_seq_to_their_last(
    messages: MessageStore,
) -> None:
    with trio.fail_after(5):
        await send(
            messages,
            new("a", GROUP, "1"),
            new("b", GROUP, "1"),
            new("a", GROUP, "2"),
            new("c", AB, "x"),  # refused: not a member; changes nothing
        )
        states = [await conv(messages, user, GROUP) for user in ("a", "b", "c")]
        assert [(s.read_seq, s.unread) for s in states] == [(3, 0), (2, 1), (0, 3)]


async def test_mentions_set_the_flag_until_read(messages: MessageStore) -> None:
    with trio.fail_after(5):
        await send(messages, new("a", GROUP, "1", mentions=("b", "a", "nobody")))
        await send(messages, new("a", GROUP, "2"))
        b, c, a = [await conv(messages, u, GROUP) for u in ("b", "c", "a")]
        assert (b.mention, c.mention, a.mention) == (True, False, False)
        await messages.mark_read("b", GROUP, 1, now_ms=NOW)
        assert not (await conv(messages, "b", GROUP)).mention
        # @all reaches every member but the sender, in one batch with others.
        await send(
            messages,
            new("b", GROUP, "2", mentions=("@all",)),
            new("c", GROUP, "3", mentions=("b",)),
        )
        assert [(await conv(messages, u, GROUP)).mention for u in ("a", "b", "c")] == [
            True,
            True,
            False,
        ]
        # @all means nothing in a direct conversation.
        await send(messages, new("a", AB, "1", mentions=("@all",)))
        assert not (await conv(messages, "b", AB)).mention


async def test_settings_change_bumps_only_my_version(
    store: ConversationStore, messages: MessageStore
) -> None:
    with trio.fail_after(5):
        _, v0 = await messages.conversations("a", since=None)
        update = await store.update_settings(
            "a", GROUP, SettingsChange(pinned=True, muted=True), now_ms=NOW
        )
        assert update.changed
        assert (update.settings.pinned, update.settings.muted, update.settings.hidden) == (
            True,
            True,
            False,
        )
        states, v1 = await messages.conversations("a", since=v0)
        assert [(s.cid, s.pinned, s.muted) for s in states] == [(GROUP, True, True)]
        assert v1 > v0
        assert (await messages.conversations("b", since=v0))[0] == []
        # The same change again changes nothing and takes no version.
        again = await store.update_settings("a", GROUP, SettingsChange(pinned=True), now_ms=NOW)
        assert not again.changed
        assert (await messages.conversations("a", since=v1)) == ([], v1)
        unpinned = await store.update_settings("a", GROUP, SettingsChange(pinned=False), now_ms=NOW)
        assert (unpinned.settings.pinned, unpinned.settings.muted) == (False, True)


async def test_a_hidden_conversation_returns_with_the_next_message(
    store: ConversationStore, messages: MessageStore
) -> None:
    with trio.fail_after(5):
        await store.update_settings("b", GROUP, SettingsChange(hidden=True), now_ms=NOW)
        await store.update_settings("c", GROUP, SettingsChange(hidden=True), now_ms=NOW)
        assert (await conv(messages, "b", GROUP)).hidden
        # A message from the one who hid it unhides it too.
        await send(messages, new("b", GROUP, "1"))
        assert [(await conv(messages, u, GROUP)).hidden for u in ("b", "c")] == [False, False]


async def test_clear_hides_history_from_me_only(
    store: ConversationStore, messages: MessageStore
) -> None:
    with trio.fail_after(5):
        await send(messages, new("a", AB, "1"), new("a", AB, "2", mentions=("b",)))
        update = await store.update_settings("b", AB, SettingsChange(clear=True), now_ms=NOW)
        assert update.settings.cleared_seq == 2
        b = await conv(messages, "b", AB)
        assert (b.cleared_seq, b.min_seq, b.unread, b.mention, b.last) == (2, 3, 0, False, None)
        page = await messages.pull("b", AB, after=0, limit=10)
        assert (page.messages, page.min_seq, page.max_seq) == ((), 3, 2)
        # The other member still sees everything.
        assert len((await messages.pull("a", AB, after=0, limit=10)).messages) == 2
        assert (await conv(messages, "a", AB)).last is not None
        await send(messages, new("a", AB, "3"))
        b = await conv(messages, "b", AB)
        assert (b.unread, b.last is not None, b.cleared_seq) == (1, True, 2)
        assert [m.seq for m in (await messages.pull("b", AB, after=0, limit=10)).messages] == [3]
        # Clearing again moves to the new max; it never moves back.
        update = await store.update_settings("b", AB, SettingsChange(clear=True), now_ms=NOW)
        assert update.settings.cleared_seq == 3


async def test_settings_of_a_non_member_are_forbidden_and_change_nothing(
    store: ConversationStore, messages: MessageStore, db: Backend
) -> None:
    with trio.fail_after(5):
        _, version = await messages.conversations("a", since=None)
        for user, cid in (("e", GROUP), ("c", AB), ("a", "g:nothing")):
            with pytest.raises(Forbidden):
                await store.update_settings(user, cid, SettingsChange(pinned=True), now_ms=NOW)
            with pytest.raises(Forbidden):
                await store.readers(user, cid, 1, after=None, limit=10)
        assert (await messages.conversations("a", since=None))[1] == version
        assert (
            await db.scalar("SELECT COUNT(*) FROM conversation_members WHERE pinned = ?", True) == 0
        )


async def test_readers_split_members_by_read_seq_in_pages(
    store: ConversationStore, messages: MessageStore
) -> None:
    with trio.fail_after(5):
        await send(messages, new("c", GROUP, "1"), new("c", GROUP, "2"))
        await messages.mark_read("a", GROUP, 2, now_ms=NOW)
        await messages.mark_read("b", GROUP, 1, now_ms=NOW)
        page = await store.readers("b", GROUP, 2, after=None, limit=10)
        assert (page.read, page.unread, page.next) == (("a", "c"), ("b",), None)
        page = await store.readers("b", GROUP, 1, after=None, limit=2)
        assert (page.read, page.unread, page.next) == (("a", "b"), (), "b")
        page = await store.readers("b", GROUP, 1, after="b", limit=2)
        assert (page.read, page.unread, page.next) == (("c",), (), None)
        page = await store.readers("b", GROUP, 0, after="c", limit=2)
        assert (page.read, page.unread, page.next) == ((), (), None)


async def test_sync_shows_the_direct_peers_read_seq_when_both_allow_it(
    messages: MessageStore, db: Backend
) -> None:
    with trio.fail_after(5):
        await send(messages, new("a", AB, "1"), new("a", AB, "2"), new("a", GROUP, "1"))
        a = await conv(messages, "a", AB)
        assert (a.peer_read_seq, (await conv(messages, "a", GROUP)).peer_read_seq) == (0, None)
        _, version = await messages.conversations("a", since=None)
        await messages.mark_read("b", AB, 1, now_ms=NOW)
        # The peer's read is a change of the conversation for me.
        states, version = await messages.conversations("a", since=version)
        assert [(s.cid, s.peer_read_seq) for s in states] == [(AB, 1)]
        await db.accounts.update_profile("b", {"read_receipts": False}, now_ms=NOW)
        assert (await conv(messages, "a", AB)).peer_read_seq is None
        assert (await conv(messages, "b", AB)).peer_read_seq is None
        await messages.mark_read("b", AB, 2, now_ms=NOW)
        assert (await messages.conversations("a", since=version))[0] == []


async def test_a_paged_list_takes_the_oldest_changes_and_never_splits_a_version(
    store: ConversationStore, messages: MessageStore, db: Backend
) -> None:
    with trio.fail_after(5):
        p0, p1, p2, p3 = (f"g:p{n}" for n in range(4))
        for cid in (p0, p1, p2, p3):
            await db.open_conversation(cid, "group", ("a", "b"))
        # One batch changes two conversations: they share one version.
        await send(messages, new("b", p1, "1"), new("b", p2, "1"))
        await store.update_settings("a", p0, SettingsChange(pinned=True), now_ms=NOW)
        _, current = await messages.conversations("a", since=None)
        pages: list[set[str]] = []
        since = None
        while True:
            states, since = await messages.conversations("a", since=since, limit=2)
            pages.append({s.cid for s in states})
            if len(states) < 2:
                break
        assert pages == [{AB, GROUP}, {p3, p1, p2}, {p0}]
        assert since == current
        # Unpaged, or with a limit that fits everything: one answer, the current version.
        everything, version = await messages.conversations("a", since=None, limit=6)
        assert (len(everything), version) == (6, current)


async def test_direct_read_receipts_need_both_switches_on(
    messages: MessageStore, db: Backend
) -> None:
    with trio.fail_after(5):
        await send(messages, new("a", AB, "1"), new("a", AB, "2"), new("a", AB, "3"))
        assert (await messages.mark_read("b", AB, 1, now_ms=NOW)).observers == ("a",)
        await db.accounts.update_profile("a", {"read_receipts": False}, now_ms=NOW)
        assert not (await db.accounts.get_user("a")).read_receipts  # type: ignore[union-attr]
        # Reciprocal: off on either side means no receipts either way.
        mark = await messages.mark_read("b", AB, 2, now_ms=NOW)
        assert (mark.advanced, mark.observers) == (True, ())
        await send(messages, new("b", AB, "1"))
        assert (await messages.mark_read("a", AB, 4, now_ms=NOW)).observers == ()
        await db.accounts.update_profile("a", {"read_receipts": True}, now_ms=NOW)
        await db.accounts.update_profile("b", {"read_receipts": False}, now_ms=NOW)
        await send(messages, new("a", AB, "4"))
        assert (await messages.mark_read("b", AB, 5, now_ms=NOW)).observers == ()


async def test_a_group_members_window_bounds_unread_last_and_mentions(
    store: ConversationStore, messages: MessageStore, db: Backend
) -> None:
    with trio.fail_after(5):
        await send(messages, *(new("a", GROUP, str(n)) for n in range(4)))
        # c joined at seq 3 (history hidden); b left after seq 2.
        await db.execute("UPDATE conversation_members SET from_seq = 3 WHERE user_id = 'c'")
        await db.execute(
            "UPDATE conversation_members SET until_seq = 2 WHERE user_id = 'b' AND cid = ?", GROUP
        )
        c, b = await conv(messages, "c", GROUP), await conv(messages, "b", GROUP)
        assert (c.min_seq, c.max_seq, c.unread) == (3, 4, 2)
        assert (b.max_seq, b.unread, b.last is not None and b.last.seq) == (2, 2, 2)
        await send(messages, new("a", GROUP, "all", mentions=("@all",)))
        assert [(await conv(messages, u, GROUP)).mention for u in ("b", "c")] == [False, True]
        page = await store.readers("a", GROUP, 1, after=None, limit=10)
        assert (page.read, page.unread) == (("a",), ("c",))
        with pytest.raises(Forbidden):
            await store.readers("b", GROUP, 1, after=None, limit=10)
        cleared = await store.update_settings("b", GROUP, SettingsChange(clear=True), now_ms=NOW)
        assert cleared.settings.cleared_seq == 2
