"""Reads of groups, members and join requests, over either backend (``store.sql._tx``).

Also the send path's check of group mutes (``send_refusal``), which the
message stores call inside their append transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sandcat.errors import NotFound
from sandcat.protocol import parse_cid
from sandcat.store.groups import Group, GroupMember, JoinRequest, MemberPage, Role
from sandcat.store.sql._tx import Tx

GROUP_COLUMNS = (
    "id, name, owner, max_members, avatar, description, announcement, created_at, "
    "updated_at, dismissed_at, join_approval, invite_policy, history_visible, mute_all"
)
_MEMBER_COLUMNS = "user_id, role, alias, joined_at, joined_seq, muted_until"
_REQUEST_COLUMNS = "id, group_id, user_id, invited_by, message, status, created_at"
_ROLE_ORDER = "CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END"

MUTED = "you are muted in this group"
MUTED_ALL = "only the owner and admins may post in this group now"


def group_from(tx: Tx, row: Any) -> Group:
    (id_, name, owner, max_members, avatar, description, announcement, created, updated) = row[:9]
    gone, approval, policy, history, mute_all = row[9:]
    return Group(
        id=id_,
        name=name,
        owner=owner,
        max_members=int(max_members),
        avatar=avatar,
        description=description,
        announcement=announcement,
        created_at=tx.time_out(created),
        updated_at=tx.time_out(updated),
        dismissed_at=None if gone is None else tx.time_out(gone),
        join_approval=bool(approval),
        invite_policy=policy,
        history_visible=bool(history),
        mute_all=bool(mute_all),
    )


def member_from(tx: Tx, row: Any) -> GroupMember:
    user, role, alias, joined, joined_seq, muted = row
    return GroupMember(
        user=user,
        role=role,
        alias=alias,
        joined_at=tx.time_out(joined),
        joined_seq=int(joined_seq),
        muted_until=tx.time_out(muted),
    )


def request_from(tx: Tx, row: Any) -> JoinRequest:
    id_, group, user, invited_by, message, status, created = row
    return JoinRequest(
        id=id_,
        group=group,
        user=user,
        invited_by=invited_by,
        message=message,
        status=status,
        created_at=tx.time_out(created),
    )


def load_group(tx: Tx, group_id: str) -> Group | None:
    row = tx.one(f"SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?", group_id)
    return None if row is None else group_from(tx, row)


def live_group(tx: Tx, group_id: str) -> Group:
    """The group unless it does not exist or was dismissed (``NotFound``)."""
    group = load_group(tx, group_id)
    if group is None or group.dismissed_at is not None:
        raise NotFound("no such group")
    return group


def member(tx: Tx, group_id: str, user: str) -> GroupMember | None:
    row = tx.one(
        f"SELECT {_MEMBER_COLUMNS} FROM group_members WHERE group_id = ? AND user_id = ?",
        group_id,
        user,
    )
    return None if row is None else member_from(tx, row)


def role_of(tx: Tx, group_id: str, user: str) -> Role | None:
    row = tx.one(
        "SELECT m.role FROM group_members m JOIN groups g ON g.id = m.group_id "
        "WHERE m.group_id = ? AND m.user_id = ? AND g.dismissed_at IS NULL",
        group_id,
        user,
    )
    return None if row is None else cast(Role, row[0])


def member_count(tx: Tx, group_id: str) -> int:
    return int(tx.one("SELECT count(*) FROM group_members WHERE group_id = ?", group_id)[0])


def members_page(
    tx: Tx, group_id: str, *, offset: int, limit: int, users: Sequence[str] = ()
) -> MemberPage:
    """A page of members; with ``users``, only those of them who are members."""
    only = f"AND user_id IN ({', '.join('?' * len(users))}) " if users else ""
    rows = tx.all(
        f"SELECT {_MEMBER_COLUMNS} FROM group_members WHERE group_id = ? {only}"
        f"ORDER BY {_ROLE_ORDER}, joined_at, user_id{tx.dialect.collate} LIMIT ? OFFSET ?",
        group_id,
        *users,
        limit,
        offset,
    )
    members = tuple(member_from(tx, row) for row in rows)
    return MemberPage(members, member_count(tx, group_id))


def pending_requests(tx: Tx, group_id: str) -> list[JoinRequest]:
    rows = tx.all(
        f"SELECT {_REQUEST_COLUMNS} FROM group_requests WHERE group_id = ? AND status = ? "
        f"ORDER BY created_at, id{tx.dialect.collate}",
        group_id,
        "pending",
    )
    return [request_from(tx, row) for row in rows]


def pending_request_of(tx: Tx, group_id: str, user: str) -> str | None:
    """The id of ``user``'s pending join request to ``group_id``, if any."""
    row = tx.one(
        "SELECT id FROM group_requests WHERE group_id = ? AND user_id = ? AND status = ?",
        group_id,
        user,
        "pending",
    )
    return None if row is None else str(row[0])


def load_request(tx: Tx, request_id: str) -> JoinRequest | None:
    row = tx.one(f"SELECT {_REQUEST_COLUMNS} FROM group_requests WHERE id = ?", request_id)
    return None if row is None else request_from(tx, row)


def send_refusal(tx: Tx, sender: str, cid: str, now_ms: int) -> str | None:
    """Why ``sender`` may not post in group ``cid`` now (muted), or None.

    Membership itself is the message store's check (``can_send``); this adds
    the member's own mute and the group's mute-all for plain members.
    """
    group = parse_cid(cid).group
    if group is None:
        return None
    row = tx.one(
        "SELECT m.role, m.muted_until, g.mute_all FROM group_members m "
        "JOIN groups g ON g.id = m.group_id WHERE m.group_id = ? AND m.user_id = ?",
        group,
        sender,
    )
    if row is None:
        return None
    role, muted_until, mute_all = row
    if tx.time_out(muted_until) > now_ms:
        return MUTED
    if mute_all and role == "member":
        return MUTED_ALL
    return None
