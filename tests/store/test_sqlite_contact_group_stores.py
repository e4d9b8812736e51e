from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandcat.errors import BadRequest, Conflict, NotFound
from sandcat.store.accounts import User
from sandcat.store.contacts import FriendRequest
from sandcat.store.groups import Group, GroupMember
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.accounts import SqliteAccountStore
from sandcat.store.sqlite.contacts import SqliteContactStore
from sandcat.store.sqlite.groups import SqliteGroupStore


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite") as database:
        accounts = SqliteAccountStore(database)
        for name in ("a", "b", "c"):
            await accounts.create_user(
                User(
                    id=name,
                    username=name * 3,
                    display_name=name,
                    password_hash="h",
                    created_at=1,
                    updated_at=1,
                )
            )
        yield database


def request(id_: str, from_user: str, to_user: str) -> FriendRequest:
    return FriendRequest(
        id=id_, from_user=from_user, to_user=to_user, remark="r", created_at=5, updated_at=5
    )


async def count(db: Database, sql: str) -> int:
    def run(conn: sqlite3.Connection) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return await db.read(run)


async def test_accept_writes_both_rows_and_the_conversation_atomically(db: Database) -> None:
    contacts = SqliteContactStore(db)
    await contacts.create_request(request("r1", "a", "b"))
    with pytest.raises(NotFound):
        await contacts.accept_request("r1", user="a", remark="", now_ms=9)
    friend = await contacts.accept_request("r1", user="b", remark="mine", now_ms=9)
    assert (friend.id, friend.remark, friend.since) == ("a", "mine", 9)
    assert [f.remark for f in await contacts.list_friends("a")] == ["r"]
    assert await count(db, "SELECT COUNT(*) FROM conversations WHERE cid = 'd:a:b'") == 1
    assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE cid = 'd:a:b'") == 2
    with pytest.raises(Conflict):
        await contacts.create_request(request("r2", "b", "a"))


async def test_request_to_unknown_user_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await SqliteContactStore(db).create_request(request("r1", "a", "zzz"))


async def test_group_with_a_stranger_writes_nothing(db: Database) -> None:
    groups = SqliteGroupStore(db)
    group = Group(id="g1", name="n", owner="a", max_members=10, created_at=1, updated_at=1)
    members = [
        GroupMember(user="a", role="owner", joined_at=1),
        GroupMember(user="b", role="member", joined_at=1),
    ]
    with pytest.raises(BadRequest) as caught:
        await groups.create_group(group, members)
    assert caught.value.field == "members"
    assert await groups.get_group("g1") is None
    assert await count(db, "SELECT COUNT(*) FROM conversations") == 0

    contacts = SqliteContactStore(db)
    await contacts.create_request(request("r1", "a", "b"))
    await contacts.accept_request("r1", user="b", remark="", now_ms=2)
    await groups.create_group(group, members)
    assert [g.id for g in await groups.list_groups("b")] == ["g1"]
    assert await groups.list_groups("c") == []
    assert [m.role for m in await groups.list_members("g1")] == ["owner", "member"]
    assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE cid = 'g:g1'") == 2
