"""GroupStore conformance for group management, on SQLite and PostgreSQL.

Every change writes a system message with the next seq and its notices in one
transaction; every refusal writes nothing and takes no seq. Membership
windows bound what PULL returns and who a send is delivered to.
"""

from __future__ import annotations

from collections.abc import Awaitable

import msgpack
import pytest

from sandcat.errors import Conflict, Forbidden, NotFound
from sandcat.store.contacts import FriendRequest
from sandcat.store.files import Upload
from sandcat.store.groups import Change, Group, GroupMember, InviteLink
from sandcat.store.messages import Appended, NewMessage, Refused
from tests.store.backend import Backend, make_user

NOW = 1_700_000_000_000
G = "g1"
CID = "g:g1"


async def befriend(db: Backend, a: str, b: str) -> None:
    request_id = f"r-{a}-{b}"
    await db.contacts.create_request(
        FriendRequest(id=request_id, from_user=a, to_user=b, remark="", created_at=1, updated_at=1)
    )
    await db.contacts.accept_request(request_id, user=b, remark="", now_ms=2)


@pytest.fixture
async def db(backend: Backend) -> Backend:
    return await group_scene(backend)


async def group_scene(backend: Backend) -> Backend:
    """Owner o, admin a, members m and n; x a friend of o and m; s a stranger."""
    await backend.users(*(make_user(name) for name in ("o", "a", "m", "n", "x", "s")))
    for friend in ("a", "m", "n", "x"):
        await befriend(backend, "o", friend)
    await befriend(backend, "m", "x")
    group = Group(id=G, name="team", owner="o", max_members=6, created_at=NOW, updated_at=NOW)
    roster = [GroupMember(user="o", role="owner", joined_at=NOW)] + [
        GroupMember(user=user, role="member", joined_at=NOW) for user in ("a", "m", "n")
    ]
    await backend.groups.create_group(group, roster)
    await backend.groups.set_role(G, "o", "a", "admin", now_ms=NOW)
    return backend


async def max_seq(db: Backend) -> int:
    return int(await db.scalar("SELECT max_seq FROM conversations WHERE cid = ?", CID))


async def send(db: Backend, sender: str, cmid: str) -> Appended | Refused:
    (outcome,) = await db.messages.append(
        [NewMessage(sender=sender, device="d", cid=CID, cmid=cmid, kind=1, body=b"\x80")],
        now_ms=NOW,
        open_direct=False,
    )
    return outcome


def event_of(change: Change) -> tuple[str, dict[str, object]]:
    assert change.entry is not None
    body = msgpack.unpackb(change.entry.message.body)
    return body["event"], body["data"]


#: What a change may write besides its message and notices: a refusal writes none of it.
_STATE = (
    "SELECT count(*) FROM inbox",
    "SELECT count(*) FROM group_members",
    "SELECT count(*) FROM group_requests WHERE status = 'pending'",
    "SELECT count(*) FROM group_bans",
    "SELECT count(*) FROM group_held_mutes",
    "SELECT count(*) FROM group_invites WHERE revoked_at IS NULL",
    "SELECT coalesce(sum(uses), 0) FROM group_invites",
)


async def state(db: Backend) -> list[int]:
    return [await max_seq(db)] + [int(await db.scalar(sql)) for sql in _STATE]


async def refused(
    db: Backend, call: Awaitable[object], error: type[Exception], reason: str | None = None
) -> None:
    """``call`` raises ``error`` (with ``reason``) and writes nothing: no message, no
    seq, no notice, no member, request, ban, held mute, invite link or use of one."""
    before = await state(db)
    with pytest.raises(error) as raised:
        await call
    assert getattr(raised.value, "reason", None) == reason
    assert await state(db) == before


async def invite_link(db: Backend, token: str, by: str = "o", **options: int) -> InviteLink:
    link = InviteLink(
        id=f"i-{token}", group=G, token=token, created_by=by, created_at=NOW, **options
    )
    return await db.groups.create_invite(link, now_ms=NOW)


async def test_a_change_is_a_system_message_with_the_next_seq(db: Backend) -> None:
    seq = await max_seq(db)
    change = await db.groups.invite(G, "o", ["x"], now_ms=NOW + 1)
    assert change.entry is not None
    message = change.entry.message
    assert (message.seq, message.kind, message.sender) == (seq + 1, 9, "o")
    assert event_of(change) == ("members.joined", {"users": ["x"], "by": "o"})
    assert set(change.entry.members) == {"o", "a", "m", "n", "x"}
    assert [(n.user, n.type, n.data["by"]) for n in change.notices] == [("x", "group.invited", "o")]
    page = await db.messages.pull("x", CID, after=0, limit=50)
    assert [m.seq for m in page.messages] == [seq + 1]
    assert page.min_seq == seq + 1
    assert await db.groups.role_of(G, "x") == "member"


async def test_invite_refusals_store_nothing(db: Backend) -> None:
    groups = db.groups
    await refused(db, groups.invite(G, "o", ["s"], now_ms=NOW), Forbidden)  # not a friend
    await refused(db, groups.invite(G, "s", ["x"], now_ms=NOW), NotFound)  # not a member
    await refused(db, groups.invite(G, "o", ["m"], now_ms=NOW), Conflict)  # already in
    await refused(db, groups.invite("nope", "o", ["x"], now_ms=NOW), NotFound)
    await groups.configure(G, "o", {"invite_policy": "admins"}, now_ms=NOW)
    await refused(db, groups.invite(G, "m", ["x"], now_ms=NOW), Forbidden)
    await groups.configure(G, "o", {"max_members": 4, "invite_policy": "members"}, now_ms=NOW)
    await refused(db, groups.invite(G, "o", ["x"], now_ms=NOW), Conflict)  # full


async def test_under_join_approval_a_members_invite_is_a_request(db: Backend) -> None:
    groups = db.groups
    await groups.configure(G, "a", {"join_approval": True}, now_ms=NOW)
    seq = await max_seq(db)
    invited = await groups.invite(G, "m", ["x"], now_ms=NOW)
    assert (invited.entry, invited.requested, invited.added) == (None, ("x",), ())
    assert await max_seq(db) == seq
    assert sorted(n.user for n in invited.notices) == ["a", "o"]
    (pending,) = await groups.requests(G, "a")
    assert (pending.user, pending.invited_by, pending.status) == ("x", "m", "pending")
    with pytest.raises(Forbidden):
        await groups.requests(G, "m")
    await refused(db, groups.decide(pending.id, "m", approve=True, now_ms=NOW), Forbidden)
    approved = await groups.decide(pending.id, "a", approve=True, now_ms=NOW)
    assert approved.request is not None
    assert approved.request.status == "approved"
    assert event_of(approved)[0] == "members.joined"
    assert [(n.user, n.type) for n in approved.notices] == [("x", "group.join_approved")]
    await refused(db, groups.decide(pending.id, "a", approve=False, now_ms=NOW), Conflict)
    assert await groups.requests(G, "o") == []


async def test_join_requests_wait_for_approval_or_join_at_once(db: Backend) -> None:
    groups = db.groups
    await invite_link(db, "t")
    joined = await groups.request_join(G, "s", "hi", token="t", now_ms=NOW)
    assert joined.request is not None
    assert joined.request.status == "approved"
    assert event_of(joined) == ("members.joined", {"users": ["s"], "by": "s"})
    await refused(db, groups.request_join(G, "s", "", token="t", now_ms=NOW), Conflict)
    await groups.configure(G, "o", {"join_approval": True}, now_ms=NOW)
    asked = await groups.request_join(G, "x", "let me in", token="t", now_ms=NOW)
    assert asked.entry is None
    assert asked.request is not None
    again = await groups.request_join(G, "x", "again", token="t", now_ms=NOW)
    assert again.request is not None
    assert again.request.id == asked.request.id
    rejected = await groups.decide(asked.request.id, "o", approve=False, now_ms=NOW)
    assert rejected.entry is None
    assert [(n.user, n.type) for n in rejected.notices] == [("x", "group.join_rejected")]
    assert await groups.role_of(G, "x") is None
    await refused(db, groups.decide("nope", "o", approve=True, now_ms=NOW), NotFound)


async def test_who_may_remove_whom(db: Backend) -> None:
    groups = db.groups
    await groups.invite(G, "o", ["x"], now_ms=NOW)
    await refused(db, groups.remove(G, "m", ["n"], now_ms=NOW), Forbidden)
    await refused(db, groups.remove(G, "a", ["o"], now_ms=NOW), Forbidden)
    await groups.set_role(G, "o", "n", "admin", now_ms=NOW)
    await refused(db, groups.remove(G, "a", ["n"], now_ms=NOW), Forbidden)
    await refused(db, groups.remove(G, "a", ["a"], now_ms=NOW), Conflict)
    await refused(db, groups.remove(G, "a", ["s"], now_ms=NOW), NotFound)
    removed = await groups.remove(G, "a", ["x"], now_ms=NOW)
    assert event_of(removed) == ("members.removed", {"users": ["x"], "by": "a"})
    assert removed.entry is not None
    assert "x" in removed.entry.members  # the removed member is told too
    assert [(n.user, n.type) for n in removed.notices] == [("x", "group.removed")]
    await groups.remove(G, "o", ["n"], now_ms=NOW)  # the owner removes an admin
    assert await groups.role_of(G, "n") is None


async def test_a_removed_member_reads_up_to_its_removal_and_can_no_longer_send(
    db: Backend,
) -> None:
    groups = db.groups
    assert isinstance(await send(db, "m", "1"), Appended)
    removal = await groups.remove(G, "o", ["m"], now_ms=NOW)
    assert removal.entry is not None
    cut = removal.entry.message.seq
    after = await send(db, "n", "2")
    assert isinstance(after, Appended)
    assert "m" not in after.members
    seq = await max_seq(db)
    assert await send(db, "m", "3") == Refused("forbidden", "not a member of this conversation")
    assert await max_seq(db) == seq
    page = await db.messages.pull("m", CID, after=0, limit=50)
    assert page.messages[-1].seq == cut
    assert page.max_seq == cut
    states, _ = await db.messages.conversations("m", since=None)
    (state,) = [s for s in states if s.cid == CID]
    assert state.max_seq == cut
    assert state.last is not None
    assert state.last.seq == cut
    assert "m" not in {member.user for member in await groups.list_members(G)}
    assert [g.id for g in await groups.list_groups("m")] == []


async def test_a_readded_member_sees_from_its_join_unless_history_is_visible(
    db: Backend,
) -> None:
    groups = db.groups
    await send(db, "n", "1")
    await groups.remove(G, "o", ["m"], now_ms=NOW)
    back = await groups.invite(G, "o", ["m"], now_ms=NOW)
    assert back.entry is not None
    page = await db.messages.pull("m", CID, after=0, limit=50)
    assert [m.seq for m in page.messages] == [back.entry.message.seq]
    assert page.min_seq == back.entry.message.seq
    (member,) = [m for m in await groups.list_members(G) if m.user == "m"]
    assert member.joined_seq == back.entry.message.seq
    assert isinstance(await send(db, "m", "2"), Appended)
    await groups.configure(G, "o", {"history_visible": True}, now_ms=NOW)
    await groups.invite(G, "o", ["x"], now_ms=NOW)
    page = await db.messages.pull("x", CID, after=0, limit=50)
    assert page.messages[0].seq == 1
    assert page.min_seq == 1


async def test_mutes_refuse_sends_without_a_seq(db: Backend) -> None:
    groups = db.groups
    await refused(db, groups.mute(G, "m", "n", NOW + 60_000, now_ms=NOW), Forbidden)
    await refused(db, groups.mute(G, "a", "o", NOW + 60_000, now_ms=NOW), Forbidden)
    muted = await groups.mute(G, "a", "m", NOW + 60_000, now_ms=NOW)
    assert event_of(muted)[0] == "member.muted"
    assert [(n.user, n.type) for n in muted.notices] == [("m", "group.muted")]
    seq = await max_seq(db)
    outcome = await send(db, "m", "1")
    assert isinstance(outcome, Refused)
    assert outcome.code == "forbidden"
    assert await max_seq(db) == seq
    assert isinstance(await send(db, "n", "2"), Appended)
    assert event_of(await groups.mute(G, "a", "m", 0, now_ms=NOW))[0] == "member.unmuted"
    assert isinstance(await send(db, "m", "3"), Appended)
    await groups.configure(G, "a", {"mute_all": True}, now_ms=NOW)
    seq = await max_seq(db)
    assert isinstance(await send(db, "n", "4"), Refused)
    assert await max_seq(db) == seq
    assert isinstance(await send(db, "a", "5"), Appended)
    assert isinstance(await send(db, "o", "6"), Appended)


async def test_leave_transfer_and_dismiss(db: Backend) -> None:
    groups = db.groups
    await refused(db, groups.leave(G, "o", now_ms=NOW), Conflict)
    left = await groups.leave(G, "n", now_ms=NOW)
    assert event_of(left) == ("member.left", {"user": "n"})
    await refused(db, groups.leave(G, "n", now_ms=NOW), NotFound)
    await refused(db, groups.transfer(G, "a", "m", now_ms=NOW), Forbidden)
    await refused(db, groups.transfer(G, "o", "s", now_ms=NOW), NotFound)
    moved = await groups.transfer(G, "o", "m", now_ms=NOW)
    assert event_of(moved) == ("owner.transferred", {"from": "o", "to": "m"})
    assert [(n.user, n.type) for n in moved.notices] == [("m", "group.owner_transferred")]
    group = await groups.get_group(G)
    assert group is not None
    assert group.owner == "m"
    assert await groups.role_of(G, "o") == "member"
    await refused(db, groups.dismiss(G, "o", now_ms=NOW), Forbidden)
    await refused(db, groups.dismiss(G, "a", now_ms=NOW), Forbidden)
    gone = await groups.dismiss(G, "m", now_ms=NOW)
    assert gone.entry is not None
    assert set(gone.entry.members) == {"o", "a", "m"}
    assert sorted(n.user for n in gone.notices) == ["a", "o"]
    assert await groups.list_groups("a") == []
    assert await groups.role_of(G, "m") is None
    seq = await max_seq(db)
    assert isinstance(await send(db, "m", "1"), Refused)
    assert await max_seq(db) == seq
    await refused(db, groups.update(G, "m", {"name": "x"}, now_ms=NOW), NotFound)


async def test_roles_info_settings_and_alias(db: Backend) -> None:
    groups = db.groups
    await refused(db, groups.set_role(G, "a", "m", "admin", now_ms=NOW), Forbidden)
    await refused(db, groups.set_role(G, "o", "a", "admin", now_ms=NOW), Conflict)
    await refused(db, groups.set_role(G, "o", "o", "member", now_ms=NOW), Conflict)
    await refused(db, groups.set_role(G, "o", "s", "admin", now_ms=NOW), NotFound)
    revoked = await groups.set_role(G, "o", "a", "member", now_ms=NOW)
    assert event_of(revoked) == ("admin.removed", {"user": "a", "by": "o"})
    await refused(db, groups.update(G, "a", {"name": "x"}, now_ms=NOW), Forbidden)
    changed = await groups.update(G, "o", {"name": "new", "announcement": "hi"}, now_ms=NOW + 5)
    assert event_of(changed) == ("group.updated", {"name": "new", "announcement": "hi", "by": "o"})
    group = await groups.get_group(G)
    assert group is not None
    assert (group.name, group.announcement, group.updated_at) == ("new", "hi", NOW + 5)
    await groups.set_role(G, "o", "a", "admin", now_ms=NOW)
    await refused(db, groups.configure(G, "a", {"max_members": 5}, now_ms=NOW), Forbidden)
    await refused(db, groups.configure(G, "o", {"max_members": 3}, now_ms=NOW), Conflict)
    await groups.configure(G, "a", {"history_visible": True, "invite_policy": "admins"}, now_ms=NOW)
    group = await groups.get_group(G)
    assert group is not None
    assert (group.history_visible, group.invite_policy) == (True, "admins")
    aliased = await groups.set_alias(G, "m", "emm", now_ms=NOW)
    assert event_of(aliased) == ("member.alias", {"user": "m", "alias": "emm"})
    await refused(db, groups.set_alias(G, "s", "x", now_ms=NOW), NotFound)


async def test_members_page_in_role_then_join_order(db: Backend) -> None:
    groups = db.groups
    first = await groups.members_page(G, "m", offset=0, limit=2)
    assert [m.user for m in first.members] == ["o", "a"]
    assert first.total == 4
    rest = await groups.members_page(G, "m", offset=2, limit=10)
    assert [m.user for m in rest.members] == ["m", "n"]
    named = await groups.members_page(G, "m", offset=0, limit=10, users=["n", "s", "o"])
    assert [m.user for m in named.members] == ["o", "n"]
    with pytest.raises(NotFound):
        await groups.members_page(G, "s", offset=0, limit=10)


async def test_creation_invites_every_member_but_the_owner(db: Backend) -> None:
    group = Group(id="g2", name="two", owner="o", max_members=5, created_at=NOW, updated_at=NOW)
    roster = [
        GroupMember(user="o", role="owner", joined_at=NOW),
        GroupMember(user="x", role="member", joined_at=NOW),
        GroupMember(user="m", role="member", joined_at=NOW),
    ]
    notices = await db.groups.create_group(group, roster)
    assert [(n.user, n.type, dict(n.data)) for n in notices] == [
        (user, "group.invited", {"group": "g2", "cid": "g:g2", "by": "o"}) for user in ("m", "x")
    ]


async def test_more_refusals(db: Backend) -> None:
    groups = db.groups
    await groups.configure(G, "o", {"join_approval": True}, now_ms=NOW)
    await invite_link(db, "t")
    asked = await groups.request_join(G, "x", "", token="t", now_ms=NOW)
    assert asked.request is not None
    await groups.invite(G, "o", ["x"], now_ms=NOW)  # the owner needs no approval
    assert await groups.requests(G, "o") == []  # and x's own request counts as approved
    await refused(db, groups.decide(asked.request.id, "o", approve=True, now_ms=NOW), Conflict)
    await refused(db, groups.transfer(G, "o", "o", now_ms=NOW), Conflict)
    await refused(db, groups.mute(G, "o", "s", NOW, now_ms=NOW), NotFound)
    with pytest.raises(ValueError, match="not group fields"):
        await groups.update(G, "o", {"owner": "m"}, now_ms=NOW)


async def test_a_removed_member_sees_only_files_sent_while_it_was_one(db: Backend) -> None:
    files = db.files
    for file_id in ("before", "after"):
        item = Upload(
            id=file_id, owner="n", kind="file", content_type="text/plain", size=1, created_at=1
        )
        await files.begin(item)
        await files.finish(item, quota_bytes=100)

    async def share(file_id: str) -> None:
        (outcome,) = await db.messages.append(
            [
                NewMessage(
                    sender="n",
                    device="d",
                    cid=CID,
                    cmid=file_id,
                    kind=1,
                    body=b"\x80",
                    files=(file_id,),
                )
            ],
            now_ms=NOW,
            open_direct=False,
        )
        assert isinstance(outcome, Appended)

    await share("before")
    await db.groups.remove(G, "o", ["m"], now_ms=NOW)
    await share("after")
    assert await files.visible_to("before", "m")
    assert not await files.visible_to("after", "m")
    assert await files.visible_to("after", "a")


async def test_role_in_a_transaction(db: Backend) -> None:
    from sandcat.store.postgres.dialect import DIALECT as POSTGRES
    from sandcat.store.sql._tx import Tx
    from sandcat.store.sql.groups.queries import role_of
    from sandcat.store.sqlite.dialect import DIALECT as SQLITE

    dialect = SQLITE if db.kind == "sqlite" else POSTGRES
    roles = await db.db.read(  # type: ignore[arg-type]
        lambda conn: [role_of(Tx(conn, dialect), G, user) for user in ("o", "a", "m", "s")]
    )
    assert roles == ["owner", "admin", "member", None]
