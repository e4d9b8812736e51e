"""ContactStore and GroupStore conformance: every implementation, same behaviour."""

from __future__ import annotations

import pytest
import trio

from sandcat.errors import BadRequest, Conflict, NotFound, RateLimited
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
    accepted = await contacts.accept_request("r1", user="b", remark="mine", now_ms=9)
    friend = accepted.value
    assert (friend.id, friend.remark, friend.since) == ("a", "mine", 9)
    (notice,) = accepted.notices
    assert (notice.user, notice.type) == ("a", "friend.accepted")
    assert notice.data == {"request": "r1", "friend": "b", "cid": "d:a:b"}
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
        rejected = (await contacts.reject_request("r1", user="b", now_ms=7)).value
        assert (rejected.status, rejected.updated_at) == ("rejected", 7)
        with pytest.raises(NotFound):
            await contacts.reject_request("r1", user="b", now_ms=8)
        with pytest.raises(NotFound):
            await contacts.reject_request("r3", user="c", now_ms=8)
        assert [r.id for r in await contacts.list_requests("b")] == ["r3"]
        # A rejected request does not block a new one (without a cool-down).
        await contacts.create_request(request("r4", "a", "b"))


async def test_a_request_the_other_way_is_a_conflict_not_a_second_request(db: Backend) -> None:
    contacts = db.contacts
    with trio.fail_after(5):
        await contacts.create_request(request("r1", "a", "b"))
        with pytest.raises(Conflict) as caught:
            await contacts.create_request(request("r2", "b", "a"))
        assert "accept" in caught.value.message
        await contacts.accept_request("r1", user="b", remark="", now_ms=9)
        assert await contacts.list_requests("a") == []
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


async def test_requests_write_notices_to_the_other_side(db: Backend) -> None:
    contacts = db.contacts
    posted = await contacts.create_request(
        FriendRequest(id="r1", from_user="a", to_user="b", message="hi", created_at=5, updated_at=5)
    )
    (notice,) = posted.notices
    assert (notice.user, notice.nseq, notice.type, notice.created_at) == (
        "b",
        1,
        "friend.requested",
        5,
    )
    assert notice.data == {
        "request": "r1",
        "from": "a",
        "username": "aaa",
        "display_name": "aaa",
        "message": "hi",
    }
    cancelled = await contacts.cancel_request("r1", user="a", now_ms=6)
    assert cancelled.value.status == "cancelled"
    assert [(n.user, n.nseq, n.type) for n in cancelled.notices] == [("b", 2, "friend.cancelled")]
    with pytest.raises(NotFound):
        await contacts.cancel_request("r1", user="a", now_ms=7)
    page = await db.inbox.pull("b", "d", after=0, limit=10)
    assert [n.type for n in page.notices] == ["friend.requested", "friend.cancelled"]


async def test_cool_down_after_rejection_and_unfriending(db: Backend) -> None:
    contacts = db.contacts
    await contacts.create_request(request("r1", "a", "b"))
    await contacts.reject_request("r1", user="b", now_ms=100)
    again = FriendRequest(id="r2", from_user="a", to_user="b", created_at=150, updated_at=150)
    with pytest.raises(RateLimited) as caught:
        await contacts.create_request(again, cooldown_ms=1000)
    assert caught.value.retry_after_ms == 950
    later = FriendRequest(id="r3", from_user="a", to_user="b", created_at=1101, updated_at=1101)
    await contacts.accept_request(
        (await contacts.create_request(later, cooldown_ms=1000)).value.id,
        user="b",
        remark="",
        now_ms=1200,
    )
    deleted = await contacts.delete_friend("b", "a", now_ms=2000)
    assert [(n.user, n.type, n.data) for n in deleted.notices] == [
        ("a", "friend.deleted", {"by": "b", "cid": "d:a:b"})
    ]
    back = FriendRequest(id="r4", from_user="a", to_user="b", created_at=2500, updated_at=2500)
    with pytest.raises(RateLimited):
        await contacts.create_request(back, cooldown_ms=1000)
    # The one who deleted may ask again at once.
    mine = FriendRequest(id="r5", from_user="b", to_user="a", created_at=2500, updated_at=2500)
    await contacts.create_request(mine, cooldown_ms=1000)


async def test_delete_remark_and_changes_since_a_version(db: Backend) -> None:
    contacts = db.contacts
    await contacts.create_request(request("r1", "a", "b"))
    await contacts.accept_request("r1", user="b", remark="", now_ms=9)
    first = await contacts.changes("a", since=0)
    assert [(f.id, f.deleted) for f in first.friends] == [("b", False)]
    assert [(r.id, r.status) for r in first.requests] == [("r1", "accepted")]
    renamed = await contacts.set_remark("a", "b", "bee", now_ms=10)
    assert renamed.remark == "bee"
    with pytest.raises(NotFound):
        await contacts.set_remark("a", "c", "x", now_ms=10)
    second = await contacts.changes("a", since=first.version)
    assert [(f.id, f.remark) for f in second.friends] == [("b", "bee")]
    assert second.requests == []
    await contacts.delete_friend("a", "b", now_ms=11)
    assert await contacts.list_friends("a") == []
    assert await contacts.list_friends("b") == []
    third = await contacts.changes("b", since=second.version)
    assert [(f.id, f.deleted) for f in third.friends] == [("a", True)]
    assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE can_send") == 0
    with pytest.raises(NotFound):
        await contacts.delete_friend("a", "b", now_ms=12)
    everything = await contacts.changes("a", since=10**12)
    assert len(everything.friends) == 1


async def test_blocks(db: Backend) -> None:
    contacts = db.contacts
    await contacts.create_request(request("r1", "a", "b"))
    await contacts.accept_request("r1", user="b", remark="", now_ms=9)
    await contacts.create_request(request("r2", "c", "a"))
    await contacts.block("a", "b", now_ms=20)
    await contacts.block("a", "b", now_ms=21)
    await contacts.block("a", "c", now_ms=22)
    assert [(b.id, b.since) for b in await contacts.list_blocks("a")] == [("c", 22), ("b", 20)]
    assert await contacts.list_requests("a") == []
    assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE can_send") == 0
    with pytest.raises(NotFound):
        await contacts.create_request(request("r3", "b", "a"))
    with pytest.raises(Conflict):
        await contacts.create_request(request("r4", "a", "c"))
    with pytest.raises(NotFound):
        await contacts.block("a", "nobody", now_ms=23)
    await contacts.unblock("a", "b", now_ms=24)
    await contacts.unblock("a", "b", now_ms=25)
    assert await count(db, "SELECT COUNT(*) FROM conversation_members WHERE can_send") == 2
    assert [b.id for b in await contacts.list_blocks("a")] == ["c"]
