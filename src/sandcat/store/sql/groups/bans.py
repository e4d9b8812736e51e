"""A group's ban list, over either backend (``store.sql._tx``).

A banned user cannot join (with an invite link or by an approved request) and
cannot be invited until unbanned. Banning is a group change like a removal:
the owner or an admin, over the same ranks (``outranks``) for users who are
members; it removes those members, rejects the banned users' pending join
requests, and writes one ``members.banned`` system message whose ``removed``
names the members it removed, with a ``group.removed`` notice (``banned``:
true) to each of them. Unbanning writes ``members.unbanned`` and no notice.
Every refusal raises before a row is written (no seq).
"""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.errors import Conflict, Forbidden, NotFound
from sandcat.store.groups import Ban, BanPage, Change, Group
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups.queries import member
from sandcat.store.sql.groups.roster import (
    end_membership,
    notice,
    open_change,
    outranks,
    require_manager,
)
from sandcat.store.sql.groups.timeline import Timeline

#: The ``reason`` of every refusal because of a ban (``SandcatError.reason``).
BANNED = "banned"


def banned(tx: Tx, group_id: str, users: Sequence[str]) -> list[str]:
    """Those of ``users`` who are banned from ``group_id``, in their order."""
    return [
        user
        for user in users
        if tx.one("SELECT 1 FROM group_bans WHERE group_id = ? AND user_id = ?", group_id, user)
        is not None
    ]


def refuse_banned(tx: Tx, group_id: str, users: Sequence[str], *, you: bool = False) -> None:
    """``Forbidden`` (reason ``banned``) if any of ``users`` is banned from the group."""
    found = banned(tx, group_id, users)
    if found and you:
        raise Forbidden("you are banned from this group", reason=BANNED)
    if found:
        raise Forbidden(
            f"users: banned from this group: {', '.join(found)}", field="users", reason=BANNED
        )


def ban(tx: Tx, group_id: str, actor: str, users: Sequence[str], now_ms: int) -> Change:
    timeline, group, role = open_change(tx, group_id, actor)
    require_manager(role, "ban users")
    if actor in users:
        raise Conflict("users: you cannot ban yourself", field="users")
    removed = []
    for user in users:
        target = member(tx, group_id, user)
        if target is None:
            if tx.one("SELECT 1 FROM users WHERE id = ?", user) is None:
                raise NotFound(f"users: no such user {user}", field="users")
            continue
        if not outranks(role, target.role):
            raise Forbidden(f"users: an {role} may not ban the {target.role} {user}")
        removed.append(user)
    return banish(tx, timeline, group, actor, users, removed=removed, now_ms=now_ms)


def banish(
    tx: Tx,
    timeline: Timeline,
    group: Group,
    actor: str,
    users: Sequence[str],
    *,
    removed: Sequence[str],
    now_ms: int,
) -> Change:
    """Ban ``users`` (checked by the caller), ending the membership of ``removed``."""
    already = set(banned(tx, group.id, users))
    new = [user for user in users if user not in already]
    if not new:
        raise Conflict("users: already banned", field="users")
    end_membership(tx, timeline, group.id, removed, now_ms=now_ms)
    for user in new:
        tx.run(
            "INSERT INTO group_bans (group_id, user_id, banned_by, created_at) VALUES (?, ?, ?, ?)",
            group.id,
            user,
            actor,
            tx.time_in(now_ms),
        )
        tx.run(
            "UPDATE group_requests SET status = ?, decided_by = ?, updated_at = ? "
            "WHERE group_id = ? AND user_id = ? AND status = ?",
            "rejected",
            actor,
            tx.time_in(now_ms),
            group.id,
            user,
            "pending",
        )
    return timeline.record(
        actor,
        "members.banned",
        {"users": new, "removed": list(removed), "by": actor},
        now_ms=now_ms,
        notices=[notice(group, "group.removed", user, by=actor, banned=True) for user in removed],
    )


def unban(tx: Tx, group_id: str, actor: str, users: Sequence[str], now_ms: int) -> Change:
    timeline, _, role = open_change(tx, group_id, actor)
    require_manager(role, "lift bans")
    found = set(banned(tx, group_id, users))
    for user in users:
        if user not in found:
            raise NotFound(f"users: {user} is not banned", field="users")
    for user in users:
        tx.run("DELETE FROM group_bans WHERE group_id = ? AND user_id = ?", group_id, user)
    return timeline.record(
        actor, "members.unbanned", {"users": list(users), "by": actor}, now_ms=now_ms
    )


def bans_page(tx: Tx, group_id: str, *, offset: int, limit: int) -> BanPage:
    rows = tx.all(
        "SELECT user_id, banned_by, created_at FROM group_bans WHERE group_id = ? "
        f"ORDER BY created_at DESC, user_id{tx.dialect.collate} LIMIT ? OFFSET ?",
        group_id,
        limit,
        offset,
    )
    total = int(tx.one("SELECT count(*) FROM group_bans WHERE group_id = ?", group_id)[0])
    bans = tuple(Ban(user=user, by=by, created_at=tx.time_out(at)) for user, by, at in rows)
    return BanPage(bans, total)
