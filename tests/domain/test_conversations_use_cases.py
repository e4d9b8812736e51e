"""Conversation use cases against the SQLite store (no sockets): what they refuse
before the store is asked, and who is told of a change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandcat.domain.conversations import Conversations
from sandcat.errors import BadRequest
from sandcat.store.conversations import Settings, SettingsChange
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.conversation_list import SqlConversationStore
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.append import message_store
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import make_user


class Told:
    def __init__(self) -> None:
        self.changes: list[tuple[str, Settings, str | None]] = []

    def settings_changed(self, user: str, settings: Settings, *, skip_device: str | None) -> None:
        self.changes.append((user, settings, skip_device))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite") as database:
        yield database


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
async def conversations(db: Database, told: Told) -> Conversations:
    accounts = SqlAccountStore(db, SQLITE)
    for user in ("a", "b"):
        await accounts.create_user(make_user(user))
    await db.write(
        lambda conn: open_conversation(
            Tx(conn, SQLITE), cid="g:g", kind="group", members=("a", "b"), now_ms=1
        )
    )
    return Conversations(
        SqlConversationStore(db, SQLITE), message_store(db), listener=told, clock=lambda: 1
    )


async def test_a_change_is_told_once_skipping_the_asking_device(
    conversations: Conversations, told: Told
) -> None:
    settings = await conversations.update("a", "g:g", SettingsChange(muted=True), device="phone")
    await conversations.update("a", "g:g", SettingsChange(muted=True), device="phone")
    assert told.changes == [("a", settings, "phone")]
    states, _ = await conversations.list("a", since=None)
    assert [(s.cid, s.muted) for s in states] == [("g:g", True)]


@pytest.mark.parametrize(
    ("cid", "change"),
    [("g:", SettingsChange(pinned=True)), ("g:g", SettingsChange()), ("d:b:a", SettingsChange())],
)
async def test_malformed_changes_are_bad_requests(
    conversations: Conversations, told: Told, cid: str, change: SettingsChange
) -> None:
    with pytest.raises(BadRequest):
        await conversations.update("a", cid, change)
    assert told.changes == []


@pytest.mark.parametrize(("cid", "limit"), [("d:a:b", 10), ("g:g", 0), ("g:g", 501), ("x", 1)])
async def test_readers_are_for_groups_in_bounded_pages(
    conversations: Conversations, cid: str, limit: int
) -> None:
    with pytest.raises(BadRequest):
        await conversations.readers("a", cid, 1, after=None, limit=limit)
