"""Where the SQLite and PostgreSQL twins of a store could answer differently, one
behaviour, pinned on both engines (the stores are now one ``store.sql`` module each).

- READERS pages follow ids in byte order (PostgreSQL's default collation would
  put ``_x`` before ``Zed`` and ``alice`` before ``Éva``);
- a notice's data comes back equal, nested values included, from a JSON text
  (SQLite) or a ``jsonb`` column (PostgreSQL);
- asking for the roles of nobody is an empty answer, not a syntax error;
- a recall withdraws its files from the conversation unless another message
  there still refers to them (one statement with a CTE on PostgreSQL before,
  a loop on SQLite; now the loop on both).
"""

from __future__ import annotations

from typing import Any

import msgpack
import trio

from sandcat.protocol import Kind
from sandcat.store.files import Upload
from sandcat.store.inbox import NewNotice
from sandcat.store.messages import Appended, NewMessage
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql.history import SqlHistoryStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import Backend, make_user

GROUP = "g:bytes"
NOW = 1_700_000_000_000
#: In byte order; a linguistic collation sorts them _x, alice, Éva, Zed.
MEMBERS = ("Zed", "_x", "alice", "\u00c9va")


async def test_readers_page_in_byte_order(backend: Backend) -> None:
    with trio.fail_after(10):
        await backend.users(*(make_user(user) for user in MEMBERS))
        await backend.open_conversation(GROUP, "group", MEMBERS)
        sent = await backend.messages.append(
            [NewMessage("Zed", "phone", GROUP, "1", Kind.TEXT, b"\xa1x")],
            now_ms=NOW,
            open_direct=False,
        )
        assert isinstance(sent[0], Appended)
        seen: list[str] = []
        after = None
        while True:
            page = await backend.conversations.readers("Zed", GROUP, 1, after=after, limit=1)
            seen.extend(page.read + page.unread)
            if page.next is None:
                break
            after = page.next
        assert seen == list(MEMBERS)


DATA: dict[str, Any] = {
    "text": "h\u00e9llo \U0001f600",
    "nested": {"list": [1, "two", None, True, {"deep": [2**53 + 1]}]},
    "flag": False,
    "nothing": None,
    "big": -(2**62),
}


async def test_notice_data_round_trips_with_nested_values(backend: Backend) -> None:
    with trio.fail_after(10):
        written = await backend.inbox.post([NewNotice("a", "system", DATA)], now_ms=NOW)
        assert written[0].data == DATA
        page = await backend.inbox.pull("a", "d1", after=0, limit=5)
        assert [(n.nseq, n.data, n.created_at) for n in page.notices] == [(1, DATA, NOW)]
        pending = await backend.inbox.pending(5)
        assert [(n.user, n.data) for n in pending] == [("a", DATA)]


async def test_roles_of_nobody_is_empty(backend: Backend) -> None:
    history = SqlHistoryStore(backend.db, SQLITE if backend.kind == "sqlite" else POSTGRES)
    await backend.users(make_user("a"))
    await backend.open_conversation(GROUP, "group", ("a",))
    assert await history.roles(GROUP, []) == {}
    assert await history.roles("d:a:b", []) == {}


async def test_a_recall_withdraws_files_no_other_message_refers_to(backend: Backend) -> None:
    ab = "d:a:b"
    with trio.fail_after(10):
        await backend.users(make_user("a"), make_user("b"))
        await backend.open_conversation(ab, "direct", ("a", "b"))
        for file_id in ("kept", "gone"):
            item = Upload(
                id=file_id,
                owner="a",
                kind="file",
                content_type="text/plain",
                size=10,
                created_at=100,
            )
            await backend.files.begin(item)
            await backend.files.finish(item, quota_bytes=1000)
        sends = [
            NewMessage("a", "d", ab, "1", Kind.TEXT, b"\xa1x", files=("kept", "gone")),
            NewMessage("a", "d", ab, "2", Kind.TEXT, b"\xa1x", files=("kept",)),
        ]
        sent = await backend.messages.append(sends, now_ms=NOW, open_direct=False)
        assert all(isinstance(outcome, Appended) for outcome in sent)
        assert await backend.files.visible_to("gone", "b")
        recall = NewMessage(
            "a", "d", ab, "3", Kind.RECALL, msgpack.packb({"seq": 1}), target=1, window_ms=60_000
        )
        [done] = await backend.messages.append([recall], now_ms=NOW + 1, open_direct=False)
        assert isinstance(done, Appended)
        assert await backend.files.visible_to("kept", "b")
        assert not await backend.files.visible_to("gone", "b")
        assert await backend.files.visible_to("gone", "a")
