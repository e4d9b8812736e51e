"""The roster steps group changes share: roles, who outranks whom, joining and
ending a membership, join requests and notices (see ``group_changes``)."""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.errors import Conflict, Forbidden, NotFound
from sandcat.ids import group_cid, new_id
from sandcat.store.groups import Group, Role
from sandcat.store.inbox import NewNotice
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups.queries import live_group, member_count, pending_request_of, role_of
from sandcat.store.sql.groups.timeline import Timeline

MANAGERS = ("owner", "admin")


def outranks(actor: Role, target: Role) -> bool:
    return (actor == "owner" and target != "owner") or (actor == "admin" and target == "member")


def open_change(tx: Tx, group_id: str, actor: str) -> tuple[Timeline, Group, Role]:
    """Lock the timeline; the live group and the actor's role (``NotFound`` if none)."""
    timeline = Timeline(tx, group_id)
    group = live_group(tx, group_id)
    role = role_of(tx, group_id, actor)
    if role is None:
        raise NotFound("no such group")
    return timeline, group, role


def require_manager(role: Role, what: str) -> None:
    if role not in MANAGERS:
        raise Forbidden(f"only the owner or an admin may {what}")


def notice(group: Group, type_: str, to: str, **data: object) -> NewNotice:
    return NewNotice(to, type_, {"group": group.id, "cid": group_cid(group.id), **data})


def managers(tx: Tx, group_id: str) -> list[str]:
    return [
        user
        for (user,) in tx.all(
            "SELECT user_id FROM group_members WHERE group_id = ? AND role IN (?, ?) "
            "ORDER BY user_id",
            group_id,
            *MANAGERS,
        )
    ]


def ensure_room(tx: Tx, group: Group, joining: int) -> None:
    if member_count(tx, group.id) + joining > group.max_members:
        raise Conflict(f"the group is full ({group.max_members} members)")


def join(
    tx: Tx, timeline: Timeline, group: Group, users: Sequence[str], *, by: str, now_ms: int
) -> None:
    """Make ``users`` members as of the timeline's seq (their window opens there);
    their pending join requests count as approved by ``by``, and a mute they
    left with is theirs again (it ends when it was set to end)."""
    first = 0 if group.history_visible else timeline.seq
    for user in users:
        tx.run(
            "UPDATE group_requests SET status = ?, decided_by = ?, updated_at = ? "
            "WHERE group_id = ? AND user_id = ? AND status = ?",
            "approved",
            by,
            tx.time_in(now_ms),
            group.id,
            user,
            "pending",
        )
        tx.run(
            "INSERT INTO group_members (group_id, user_id, role, alias, joined_at, joined_seq, "
            "muted_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
            group.id,
            user,
            "member",
            "",
            tx.time_in(now_ms),
            timeline.seq,
            tx.time_in(_held_mute(tx, group.id, user)),
        )
        tx.run(
            "INSERT INTO conversation_members (user_id, cid, can_send, version, from_seq) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, cid) DO UPDATE SET "
            "can_send = excluded.can_send, from_seq = excluded.from_seq, until_seq = NULL",
            user,
            timeline.cid,
            True,
            0,
            first,
        )
        timeline.touched.add(user)


def end_membership(
    tx: Tx, timeline: Timeline, group_id: str, users: Sequence[str], *, now_ms: int
) -> None:
    """End the membership of ``users``: they read up to the timeline's seq, no
    further. A mute still running is held for their return (``join``): leaving
    and rejoining must not lift it."""
    for user in users:
        tx.run(
            "INSERT INTO group_held_mutes (group_id, user_id, muted_until) "
            "SELECT group_id, user_id, muted_until FROM group_members "
            "WHERE group_id = ? AND user_id = ? AND muted_until > ?",
            group_id,
            user,
            tx.time_in(now_ms),
        )
        tx.run("DELETE FROM group_members WHERE group_id = ? AND user_id = ?", group_id, user)
        tx.run(
            "UPDATE conversation_members SET can_send = ?, until_seq = ? "
            "WHERE cid = ? AND user_id = ?",
            False,
            timeline.seq,
            timeline.cid,
            user,
        )
        timeline.touched.add(user)


def _held_mute(tx: Tx, group_id: str, user: str) -> int:
    """The mute ``user`` left ``group_id`` with (0: none), taken back out of holding."""
    row = tx.one(
        "SELECT muted_until FROM group_held_mutes WHERE group_id = ? AND user_id = ?",
        group_id,
        user,
    )
    if row is None:
        return 0
    tx.run("DELETE FROM group_held_mutes WHERE group_id = ? AND user_id = ?", group_id, user)
    return tx.time_out(row[0])


def file_request(
    tx: Tx, group: Group, user: str, invited_by: str | None, message: str, now_ms: int
) -> str:
    pending = pending_request_of(tx, group.id, user)
    if pending is not None:
        return pending
    request_id = new_id()
    tx.run(
        "INSERT INTO group_requests (id, group_id, user_id, invited_by, message, status, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        request_id,
        group.id,
        user,
        invited_by,
        message,
        "pending",
        tx.time_in(now_ms),
        tx.time_in(now_ms),
    )
    return request_id


def invitations(group: Group, users: Sequence[str]) -> list[NewNotice]:
    """The ``group.invited`` notices of the members a new group starts with."""
    return [notice(group, "group.invited", user, by=group.owner) for user in users]
