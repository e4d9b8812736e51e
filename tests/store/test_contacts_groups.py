"""ContactStore and GroupStore conformance: every implementation, same behaviour."""

from __future__ import annotations

import pytest
import trio

from sandcat.errors import BadRequest, Conflict, NotFound
from sandcat.store.contacts import FriendRequest
from sandcat.store.groups import Group, GroupMember
from tests.store.backend import Backend, make_user


@pytest.fixture
async def db(backend: Backend) -> Backend:
    await backend.users(*(make_user(name, name * 3) for name in ("a", "b", "c")))
    return backend


def request(id_: str, from_user: str, to_user: str) -> FriendRequest:
    return FriendRequest(
        id=id_, from_user=from_user, to_user=to_user, remark="r", created_at=5, updated_at=5
    )


async def count(db: Backend, sql: str) -> int:
    return int(await db.scalar(sql))


async def test_accept_writes_both_rows_and_the_conversation_atomically(db: Backend) -> None:
    contacts = db.contacts
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


async def test_request_to_unknown_user_is_not_found(db: Backend) -> None:
    with pytest.raises(NotFound):
        await db.contacts.create_request(request("r1", "a", "zzz"))


async def test_group_with_a_stranger_writes_nothing(db: Backend) -> None:
    groups = db.groups
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

    contacts = db.contacts
    await contacts.create_request(request("r1", "a", "b"))
    await contacts.accept_request("r1", user="b", remark="", now_ms=2)
    await groups.create_group(group, members)
    assert [g.id for g in await groups.list_groups("b")] == ["g1"]
    assert await groups.list_groups("c") == []
    assert [m.role for m in await groups.list_members("g1")] == ["owner", "member"]
    assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE cid = 'g:g1'") == 2


async def test_requests_list_reject_and_pending_conflicts(db: Backend) -> None:
    contacts = db.contacts
    with trio.fail_after(5):
        await contacts.create_request(request("r1", "a", "b"))
        with pytest.raises(Conflict) as caught:
            await contacts.create_request(request("r2", "a", "b"))
        assert caught.value.field == "to"
        await contacts.create_request(request("r3", "c", "b"))
        assert sorted(r.id for r in await contacts.list_requests("b")) == ["r1", "r3"]
        assert [r.id for r in await contacts.list_requests("a")] == ["r1"]
        rejected = await contacts.reject_request("r1", user="b", now_ms=7)
        assert (rejected.status, rejected.updated_at) == ("rejected", 7)
        with pytest.raises(NotFound):
            await contacts.reject_request("r1", user="b", now_ms=8)
        with pytest.raises(NotFound):
            await contacts.reject_request("r3", user="c", now_ms=8)
        assert [r.id for r in await contacts.list_requests("b")] == ["r3"]
        # A rejected request does not block a new one.
        await contacts.create_request(request("r4", "a", "b"))


async def test_accepting_also_accepts_the_request_the_other_way(db: Backend) -> None:
    contacts = db.contacts
    with trio.fail_after(5):
        await contacts.create_request(request("r1", "a", "b"))
        await contacts.create_request(request("r2", "b", "a"))
        await contacts.accept_request("r1", user="b", remark="", now_ms=9)
        assert await contacts.list_requests("a") == []
        with pytest.raises(NotFound):
            await contacts.accept_request("r2", user="a", remark="", now_ms=10)
        assert [f.id for f in await contacts.list_friends("b")] == ["a"]


async def test_group_fields_round_trip(db: Backend) -> None:
    contacts, groups = db.contacts, db.groups
    with trio.fail_after(5):
        await contacts.create_request(request("r1", "a", "c"))
        await contacts.accept_request("r1", user="c", remark="", now_ms=2)
        group = Group(
            id="g2",
            name="n\u00e4me",
            owner="a",
            max_members=7,
            avatar="av",
            description="d",
            announcement="an",
            created_at=1_700_000_000_001,
            updated_at=1_700_000_000_002,
        )
        members = [
            GroupMember(user="c", role="member", alias="cee", joined_at=3),
            GroupMember(user="a", role="owner", joined_at=3),
        ]
        await groups.create_group(group, members)
        assert await groups.get_group("g2") == group
        assert [(m.user, m.role, m.alias) for m in await groups.list_members("g2")] == [
            ("a", "owner", ""),
            ("c", "member", "cee"),
        ]
        assert await groups.get_group("nope") is None
