"""GroupStore conformance for moderation, on SQLite and PostgreSQL: bans, mutes
that outlast a membership, and invite links (issue 12).

A ban is a group change (system message, seq, notices); invite links are not.
Every refusal writes nothing and takes no seq (``refused`` checks both, and
that no member, request, ban, held mute, link or use of a link was written).
"""

from __future__ import annotations

import pytest

from sandcat.errors import Conflict, Forbidden, NotFound
from sandcat.store.groups import MAX_LIVE_INVITES, Group, GroupMember, InviteLink
from sandcat.store.messages import Appended, Refused
from tests.store.backend import Backend
from tests.store.test_groups import (
    CID,
    NOW,
    G,
    event_of,
    group_scene,
    invite_link,
    max_seq,
    refused,
    send,
)


@pytest.fixture
async def db(backend: Backend) -> Backend:
    return await group_scene(backend)


async def test_a_mute_outlasts_leaving_and_removal(db: Backend) -> None:
    groups = db.groups
    await groups.mute(G, "o", "m", NOW + 60_000, now_ms=NOW)
    await groups.leave(G, "m", now_ms=NOW + 1)
    back = await groups.invite(G, "o", ["m"], now_ms=NOW + 2)
    assert back.entry is not None
    (member,) = (await groups.members_page(G, "o", offset=0, limit=10, users=["m"])).members
    assert member.muted_until == NOW + 60_000
    outcome = await send(db, "m", "1")
    assert isinstance(outcome, Refused)
    assert outcome.code == "forbidden"
    # Removal holds it too, and a rejoin through a link gives it back.
    await groups.remove(G, "a", ["m"], now_ms=NOW + 3)
    await invite_link(db, "t")
    await groups.request_join(G, "m", "", token="t", now_ms=NOW + 4)
    (member,) = (await groups.members_page(G, "o", offset=0, limit=10, users=["m"])).members
    assert member.muted_until == NOW + 60_000
    assert int(await db.scalar("SELECT count(*) FROM group_held_mutes")) == 0


async def test_a_mute_that_ended_is_not_held(db: Backend) -> None:
    groups = db.groups
    await groups.mute(G, "o", "m", NOW + 10, now_ms=NOW)
    await groups.leave(G, "m", now_ms=NOW + 10)  # the mute ends as the member leaves
    await groups.mute(G, "o", "n", NOW + 11, now_ms=NOW)
    await groups.leave(G, "n", now_ms=NOW + 10)  # one ms of it left: held
    assert int(await db.scalar("SELECT count(*) FROM group_held_mutes")) == 1
    await groups.invite(G, "o", ["m", "n"], now_ms=NOW + 20)
    page = await groups.members_page(G, "o", offset=0, limit=10, users=["m", "n"])
    assert {m.user: m.muted_until for m in page.members} == {"m": 0, "n": NOW + 11}
    assert isinstance(await send(db, "m", "1"), Appended)


async def test_ban_removes_members_rejects_requests_and_is_a_change(db: Backend) -> None:
    groups = db.groups
    await groups.configure(G, "o", {"join_approval": True}, now_ms=NOW)
    await invite_link(db, "t")
    asked = await groups.request_join(G, "x", "", token="t", now_ms=NOW)
    assert asked.request is not None
    seq = await max_seq(db)
    change = await groups.ban(G, "a", ["m", "x", "s"], now_ms=NOW + 1)
    assert change.entry is not None
    assert change.entry.message.seq == seq + 1
    assert event_of(change) == (
        "members.banned",
        {"users": ["m", "x", "s"], "removed": ["m"], "by": "a"},
    )
    assert "m" in change.entry.members  # the removed member is told too
    assert [(n.user, n.type, n.data["banned"]) for n in change.notices] == [
        ("m", "group.removed", True)
    ]
    assert await groups.role_of(G, "m") is None
    assert await groups.requests(G, "o") == []  # x's request was rejected
    assert isinstance(await send(db, "m", "late"), Refused)
    page = await db.messages.pull("m", CID, after=0, limit=50)
    assert page.max_seq == seq + 1
    bans = await groups.bans_page(G, "o", offset=0, limit=2)
    assert bans.total == 3
    # Banned at the same time: in user order.
    assert [(b.user, b.by, b.created_at) for b in bans.bans] == [
        ("m", "a", NOW + 1),
        ("s", "a", NOW + 1),
    ]
    rest = await groups.bans_page(G, "o", offset=2, limit=2)
    assert [b.user for b in rest.bans] == ["x"]


async def test_banned_users_cannot_join_or_be_invited(db: Backend) -> None:
    groups = db.groups
    await invite_link(db, "t")
    await groups.remove(G, "o", ["m"], now_ms=NOW, ban=True)
    await groups.ban(G, "o", ["x"], now_ms=NOW)
    await refused(db, groups.invite(G, "o", ["m"], now_ms=NOW), Forbidden, "banned")
    await refused(db, groups.invite(G, "o", ["x", "n"], now_ms=NOW), Forbidden, "banned")
    await refused(db, groups.request_join(G, "m", "", token="t", now_ms=NOW), Forbidden, "banned")
    await groups.configure(G, "o", {"join_approval": True}, now_ms=NOW)
    await refused(db, groups.request_join(G, "x", "", token="t", now_ms=NOW), Forbidden, "banned")
    lifted = await groups.unban(G, "a", ["m", "x"], now_ms=NOW)
    assert event_of(lifted) == ("members.unbanned", {"users": ["m", "x"], "by": "a"})
    assert lifted.notices == ()
    back = await groups.invite(G, "o", ["m"], now_ms=NOW)
    assert back.added == ("m",)
    assert (await groups.bans_page(G, "o", offset=0, limit=10)).total == 0


async def test_ban_refusals_store_nothing(db: Backend) -> None:
    groups = db.groups
    await refused(db, groups.ban(G, "m", ["n"], now_ms=NOW), Forbidden)  # a plain member
    await refused(db, groups.ban(G, "m", ["s"], now_ms=NOW), Forbidden)
    await refused(db, groups.ban(G, "a", ["o"], now_ms=NOW), Forbidden)  # outranked
    await groups.set_role(G, "o", "n", "admin", now_ms=NOW)
    await refused(db, groups.ban(G, "a", ["s", "n"], now_ms=NOW), Forbidden)  # an admin
    await refused(db, groups.ban(G, "a", ["a"], now_ms=NOW), Conflict)  # yourself
    await refused(db, groups.ban(G, "a", ["nobody"], now_ms=NOW), NotFound)
    await refused(db, groups.ban(G, "s", ["m"], now_ms=NOW), NotFound)  # not a member
    await refused(db, groups.ban("nope", "o", ["m"], now_ms=NOW), NotFound)
    await refused(db, groups.remove(G, "a", ["s"], now_ms=NOW, ban=True), NotFound)
    await refused(db, groups.remove(G, "m", ["s"], now_ms=NOW, ban=True), Forbidden)
    await groups.ban(G, "a", ["s"], now_ms=NOW)
    await refused(db, groups.ban(G, "o", ["s"], now_ms=NOW), Conflict)  # already
    await refused(db, groups.unban(G, "o", ["s", "x"], now_ms=NOW), NotFound)  # x is not
    await refused(db, groups.unban(G, "m", ["s"], now_ms=NOW), Forbidden)
    await refused(db, groups.unban(G, "x", ["s"], now_ms=NOW), NotFound)
    with pytest.raises(Forbidden):
        await groups.bans_page(G, "m", offset=0, limit=10)
    with pytest.raises(NotFound):
        await groups.bans_page(G, "s", offset=0, limit=10)
    # Banning again, with someone new among them, bans only the new one.
    again = await groups.ban(G, "o", ["s", "x"], now_ms=NOW)
    assert event_of(again) == ("members.banned", {"users": ["x"], "removed": [], "by": "o"})


async def test_joining_needs_a_working_link_of_the_group(db: Backend) -> None:
    groups = db.groups
    await invite_link(db, "two", max_uses=2)
    await invite_link(db, "soon", expires_at=NOW + 10)
    await invite_link(db, "gone")
    await groups.revoke_invite(G, "o", "i-gone", now_ms=NOW)
    join = groups.request_join
    await refused(db, join(G, "s", "", token="nope", now_ms=NOW), NotFound)
    await refused(db, join("nope", "s", "", token="two", now_ms=NOW), NotFound)
    await refused(db, join(G, "s", "", token="gone", now_ms=NOW), Forbidden, "invite_revoked")
    await refused(db, join(G, "s", "", token="soon", now_ms=NOW + 10), Forbidden, "invite_expired")
    assert (await join(G, "s", "", token="soon", now_ms=NOW + 9)).entry is not None
    assert (await join(G, "x", "", token="two", now_ms=NOW)).entry is not None  # use 1 of 2
    await groups.leave(G, "x", now_ms=NOW)
    assert (await join(G, "x", "", token="two", now_ms=NOW)).entry is not None  # use 2 of 2
    await groups.leave(G, "x", now_ms=NOW)
    await refused(db, join(G, "x", "", token="two", now_ms=NOW), Forbidden, "invite_used_up")
    await refused(db, join(G, "m", "", token="soon", now_ms=NOW), Conflict)  # a member
    # Another group's token does not open this one.
    other = Group(id="g2", name="two", owner="o", max_members=5, created_at=NOW, updated_at=NOW)
    await groups.create_group(other, [GroupMember(user="o", role="owner", joined_at=NOW)])
    await groups.create_invite(
        InviteLink(id="i-nine", group="g2", token="nine", created_by="o", created_at=NOW),
        now_ms=NOW,
    )
    await refused(db, join(G, "n", "", token="nine", now_ms=NOW), NotFound)
    assert (await join("g2", "n", "", token="nine", now_ms=NOW)).entry is not None
    uses = await db.scalar("SELECT uses FROM group_invites WHERE id = ?", "i-two")
    assert int(uses) == 2


async def test_under_join_approval_a_link_files_a_request(db: Backend) -> None:
    groups = db.groups
    await groups.configure(G, "o", {"join_approval": True}, now_ms=NOW)
    await invite_link(db, "two", max_uses=2)
    seq = await max_seq(db)
    asked = await groups.request_join(G, "x", "hi", token="two", now_ms=NOW)
    assert asked.entry is None
    assert asked.request is not None
    assert asked.request.status == "pending"
    assert sorted(n.user for n in asked.notices) == ["a", "o"]
    assert await max_seq(db) == seq
    assert await groups.role_of(G, "x") is None
    # Asking again is the same request and does not use the link again.
    again = await groups.request_join(G, "x", "hi", token="two", now_ms=NOW)
    assert again.request is not None
    assert again.request.id == asked.request.id
    await groups.request_join(G, "s", "", token="two", now_ms=NOW)  # the second use
    await groups.leave(G, "n", now_ms=NOW)
    await refused(
        db, groups.request_join(G, "n", "", token="two", now_ms=NOW), Forbidden, "invite_used_up"
    )
    approved = await groups.decide(asked.request.id, "a", approve=True, now_ms=NOW)
    assert event_of(approved)[0] == "members.joined"


async def test_who_may_make_list_and_revoke_links(db: Backend) -> None:
    groups = db.groups
    mine = await invite_link(db, "m1", by="m")
    await invite_link(db, "n1", by="n")
    await invite_link(db, "used", by="o", max_uses=1)
    await groups.request_join(G, "x", "", token="used", now_ms=NOW)
    await invite_link(db, "old", by="o", expires_at=NOW + 1)
    await refused(db, invite_link(db, "s1", by="s"), NotFound)  # not a member
    listed = await groups.invites(G, "a", now_ms=NOW + 1)  # "used" and "old" no longer work
    assert sorted(link.token for link in listed) == ["m1", "n1"]
    assert [link.token for link in await groups.invites(G, "m", now_ms=NOW)] == ["m1"]
    assert mine in await groups.invites(G, "m", now_ms=NOW)
    with pytest.raises(NotFound):
        await groups.invites(G, "s", now_ms=NOW)
    await refused(db, groups.revoke_invite(G, "m", "i-n1", now_ms=NOW), Forbidden)
    await refused(db, groups.revoke_invite(G, "o", "nope", now_ms=NOW), NotFound)
    await refused(db, groups.revoke_invite(G, "s", "i-m1", now_ms=NOW), NotFound)
    revoked = await groups.revoke_invite(G, "m", "i-m1", now_ms=NOW + 5)  # its creator
    assert revoked.revoked_at == NOW + 5
    assert (await groups.revoke_invite(G, "a", "i-n1", now_ms=NOW)).revoked_at == NOW  # an admin
    await refused(db, groups.revoke_invite(G, "o", "i-m1", now_ms=NOW), Conflict)
    await groups.configure(G, "o", {"invite_policy": "admins"}, now_ms=NOW)
    await refused(db, invite_link(db, "m2", by="m"), Forbidden)
    assert (await invite_link(db, "a2", by="a")).token == "a2"


async def test_a_group_has_at_most_so_many_working_links(db: Backend) -> None:
    for number in range(MAX_LIVE_INVITES - 1):
        await invite_link(db, f"t{number}")
    await invite_link(db, "last")  # the limit itself
    await refused(db, invite_link(db, "over"), Conflict)
    await db.groups.revoke_invite(G, "o", "i-last", now_ms=NOW)
    await invite_link(db, "again")
