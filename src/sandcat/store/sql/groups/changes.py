"""Group changes inside one transaction, over either backend (``store.sql._tx``).

Each function locks the group's timeline first (``Timeline``), then reads
the group and the actor's role under that lock, checks the rules, changes the
rows and records the system message with the notices. Anything refused raises
before a row is written, and the caller's transaction rolls back: a refused
change stores nothing and takes no seq.

The rules: owner and admins manage; an admin acts only on plain members; the
owner on anyone but himself. Only the owner dismisses, transfers, names admins
and sets ``max_members``. A member's readable window on the timeline is
``from_seq`` .. ``until_seq`` of its conversation row (``until_seq`` set when
it ends), so a removed member reads up to its removal and no further, and a
(re-)added one from its join unless the group's history is visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sandcat.errors import Conflict, Forbidden, NotFound
from sandcat.store.groups import AvatarChange, Change, Group, Invited, Requested, Role
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.contacts import is_friend
from sandcat.store.sql.files import use_avatar
from sandcat.store.sql.groups import invites as invites
from sandcat.store.sql.groups.bans import banish, refuse_banned
from sandcat.store.sql.groups.queries import (
    live_group,
    load_request,
    member,
    member_count,
    pending_request_of,
)
from sandcat.store.sql.groups.roster import (
    MANAGERS,
    end_membership,
    ensure_room,
    file_request,
    join,
    managers,
    notice,
    open_change,
    outranks,
    require_manager,
)
from sandcat.store.sql.groups.timeline import Timeline


def invite(tx: Tx, group_id: str, actor: str, users: Sequence[str], now_ms: int) -> Invited:
    timeline, group, role = open_change(tx, group_id, actor)
    if group.invite_policy == "admins":
        require_manager(role, "invite to this group")
    strangers = [user for user in users if user != actor and not is_friend(tx, actor, user)]
    if strangers:
        raise Forbidden(f"users: not your friends: {', '.join(strangers)}", field="users")
    new = [user for user in users if member(tx, group_id, user) is None]
    if not new:
        raise Conflict("users: already members")
    refuse_banned(tx, group_id, new)
    if group.join_approval and role not in MANAGERS:
        ids = [file_request(tx, group, user, actor, "", now_ms) for user in new]
        notices = [
            notice(group, "group.join_requested", manager, request=request_id, user=user, by=actor)
            for manager in managers(tx, group_id)
            for user, request_id in zip(new, ids, strict=True)
        ]
        written = tx.post(notices, now_ms)
        return Invited(None, written, requested=tuple(new))
    ensure_room(tx, group, len(new))
    join(tx, timeline, group, new, by=actor, now_ms=now_ms)
    change = timeline.record(
        actor,
        "members.joined",
        {"users": new, "by": actor},
        now_ms=now_ms,
        notices=[notice(group, "group.invited", user, by=actor) for user in new],
    )
    return Invited(change.entry, change.notices, added=tuple(new))


def request_join(
    tx: Tx, group_id: str, user: str, message: str, token: str, now_ms: int
) -> Requested:
    invites.find(tx, group_id, token)  # before the lock: a wrong token learns nothing more
    timeline = Timeline(tx, group_id)
    group = live_group(tx, group_id)
    link = invites.usable(tx, group_id, token, now_ms)
    refuse_banned(tx, group_id, [user], you=True)
    if member(tx, group_id, user) is not None:
        raise Conflict("already a member")
    if pending_request_of(tx, group_id, user) is None:
        invites.use(tx, link)  # asking again does not use the link again
    request_id = file_request(tx, group, user, None, message, now_ms)
    if group.join_approval:
        notices = [
            notice(group, "group.join_requested", manager, request=request_id, user=user, by=user)
            for manager in managers(tx, group_id)
        ]
        written = tx.post(notices, now_ms)
        return Requested(None, written, request=load_request(tx, request_id))
    return _approve(tx, timeline, group, request_id, user, actor=user, now_ms=now_ms)


def _approve(
    tx: Tx, timeline: Timeline, group: Group, request_id: str, user: str, *, actor: str, now_ms: int
) -> Requested:
    ensure_room(tx, group, 1)
    join(tx, timeline, group, [user], by=actor, now_ms=now_ms)
    notices = (
        []
        if actor == user
        else [notice(group, "group.join_approved", user, request=request_id, by=actor)]
    )
    change = timeline.record(
        actor, "members.joined", {"users": [user], "by": actor}, now_ms=now_ms, notices=notices
    )
    return Requested(change.entry, change.notices, request=load_request(tx, request_id))


def _settle(tx: Tx, request_id: str, status: str, actor: str, now_ms: int) -> None:
    tx.run(
        "UPDATE group_requests SET status = ?, decided_by = ?, updated_at = ? WHERE id = ?",
        status,
        actor,
        tx.time_in(now_ms),
        request_id,
    )


def decide(tx: Tx, request_id: str, actor: str, approve: bool, now_ms: int) -> Requested:
    found = load_request(tx, request_id)
    if found is None:
        raise NotFound("no such join request")
    timeline, group, role = open_change(tx, found.group, actor)
    require_manager(role, "decide on join requests")
    request = load_request(tx, request_id)  # again, under the timeline's lock
    if request is None or request.status != "pending":
        raise Conflict("the join request was already decided")
    if approve:
        return _approve(tx, timeline, group, request_id, request.user, actor=actor, now_ms=now_ms)
    _settle(tx, request_id, "rejected", actor, now_ms)
    rejection = notice(group, "group.join_rejected", request.user, request=request_id, by=actor)
    written = tx.post([rejection], now_ms)
    return Requested(None, written, request=load_request(tx, request_id))


def remove(
    tx: Tx, group_id: str, actor: str, users: Sequence[str], now_ms: int, ban: bool = False
) -> Change:
    timeline, group, role = open_change(tx, group_id, actor)
    require_manager(role, "remove members")
    if actor in users:
        raise Conflict("users: leave the group instead of removing yourself", field="users")
    for user in users:
        target = member(tx, group_id, user)
        if target is None:
            raise NotFound(f"users: {user} is not a member", field="users")
        if not outranks(role, target.role):
            raise Forbidden(f"users: an {role} may not remove the {target.role} {user}")
    if ban:
        return banish(tx, timeline, group, actor, users, removed=users, now_ms=now_ms)
    end_membership(tx, timeline, group_id, users, now_ms=now_ms)
    return timeline.record(
        actor,
        "members.removed",
        {"users": list(users), "by": actor},
        now_ms=now_ms,
        notices=[notice(group, "group.removed", user, by=actor) for user in users],
    )


def leave(tx: Tx, group_id: str, user: str, now_ms: int) -> Change:
    timeline, _, role = open_change(tx, group_id, user)
    if role == "owner":
        raise Conflict("the owner must transfer the group or dismiss it before leaving")
    end_membership(tx, timeline, group_id, [user], now_ms=now_ms)
    return timeline.record(user, "member.left", {"user": user}, now_ms=now_ms)


def dismiss(tx: Tx, group_id: str, actor: str, now_ms: int) -> Change:
    timeline, group, role = open_change(tx, group_id, actor)
    if role != "owner":
        raise Forbidden("only the owner may dismiss the group")
    members = [
        user for (user,) in tx.all("SELECT user_id FROM group_members WHERE group_id = ?", group_id)
    ]
    tx.run(
        "UPDATE conversation_members SET can_send = ?, until_seq = ? "
        "WHERE cid = ? AND until_seq IS NULL",
        False,
        timeline.seq,
        timeline.cid,
    )
    timeline.touched.update(members)
    tx.run(
        "UPDATE groups SET dismissed_at = ?, updated_at = ? WHERE id = ?",
        tx.time_in(now_ms),
        tx.time_in(now_ms),
        group_id,
    )
    tx.run(
        "UPDATE group_requests SET status = ? WHERE group_id = ? AND status = ?",
        "rejected",
        group_id,
        "pending",
    )
    return timeline.record(
        actor,
        "group.dismissed",
        {"by": actor},
        now_ms=now_ms,
        notices=[
            notice(group, "group.dismissed", user, by=actor)
            for user in sorted(members)
            if user != actor
        ],
    )


def _set_member_role(tx: Tx, group_id: str, user: str, role: Role) -> None:
    tx.run(
        "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?", role, group_id, user
    )


def transfer(tx: Tx, group_id: str, actor: str, to: str, now_ms: int) -> Change:
    timeline, group, role = open_change(tx, group_id, actor)
    if role != "owner":
        raise Forbidden("only the owner may transfer the group")
    if to == actor:
        raise Conflict("to: you already own the group", field="to")
    if member(tx, group_id, to) is None:
        raise NotFound("to: not a member of the group", field="to")
    _set_member_role(tx, group_id, actor, "member")
    _set_member_role(tx, group_id, to, "owner")
    tx.run(
        "UPDATE groups SET owner = ?, updated_at = ? WHERE id = ?", to, tx.time_in(now_ms), group_id
    )
    return timeline.record(
        actor,
        "owner.transferred",
        {"from": actor, "to": to},
        now_ms=now_ms,
        notices=[notice(group, "group.owner_transferred", to, by=actor)],
    )


def set_role(tx: Tx, group_id: str, actor: str, user: str, role: Role, now_ms: int) -> Change:
    timeline, group, mine = open_change(tx, group_id, actor)
    if mine != "owner":
        raise Forbidden("only the owner may name or revoke admins")
    target = member(tx, group_id, user)
    if target is None:
        raise NotFound("user: not a member of the group", field="user")
    if target.role == "owner" or target.role == role:
        raise Conflict(f"user: is already the {target.role}", field="user")
    _set_member_role(tx, group_id, user, role)
    return timeline.record(
        actor,
        "admin.added" if role == "admin" else "admin.removed",
        {"user": user, "by": actor},
        now_ms=now_ms,
        notices=[notice(group, "group.role_changed", user, role=role, by=actor)],
    )


def mute(tx: Tx, group_id: str, actor: str, user: str, until_ms: int, now_ms: int) -> Change:
    timeline, group, role = open_change(tx, group_id, actor)
    require_manager(role, "mute members")
    target = member(tx, group_id, user)
    if target is None:
        raise NotFound("user: not a member of the group", field="user")
    if not outranks(role, target.role):
        raise Forbidden(f"an {role} may not mute the {target.role}")
    tx.run(
        "UPDATE group_members SET muted_until = ? WHERE group_id = ? AND user_id = ?",
        tx.time_in(until_ms),
        group_id,
        user,
    )
    return timeline.record(
        actor,
        "member.muted" if until_ms > now_ms else "member.unmuted",
        {"user": user, "until": until_ms, "by": actor},
        now_ms=now_ms,
        notices=[notice(group, "group.muted", user, until=until_ms, by=actor)],
    )


def update(tx: Tx, group_id: str, actor: str, fields: Mapping[str, object], now_ms: int) -> Change:
    """Change info fields (validated by the caller: name, avatar, description, announcement)."""
    timeline, group, role = open_change(tx, group_id, actor)
    require_manager(role, "change the group's information")
    return _write_fields(tx, timeline, group, actor, "group.updated", fields, now_ms)


def set_avatar(tx: Tx, group_id: str, actor: str, file_id: str, now_ms: int) -> AvatarChange:
    """``PUT /groups/{id}/avatar``: the same change and message as ``update`` with
    ``avatar``, and the upload marked in use (so the janitor keeps it)."""
    timeline, group, role = open_change(tx, group_id, actor)
    require_manager(role, "change the group avatar")
    use_avatar(tx, file_id, now_ms)
    change = _write_fields(tx, timeline, group, actor, "group.updated", {"avatar": file_id}, now_ms)
    return AvatarChange(entry=change.entry, notices=change.notices, previous=group.avatar)


def configure(
    tx: Tx, group_id: str, actor: str, fields: Mapping[str, object], now_ms: int
) -> Change:
    """Change settings (validated by the caller; ``max_members`` within the server's limit)."""
    timeline, group, role = open_change(tx, group_id, actor)
    require_manager(role, "change the group's settings")
    if "max_members" in fields:
        if role != "owner":
            raise Forbidden("only the owner may change max_members")
        limit = fields["max_members"]
        assert isinstance(limit, int)
        if limit < member_count(tx, group_id):
            raise Conflict("max_members: below the current member count", field="max_members")
    return _write_fields(tx, timeline, group, actor, "settings.updated", fields, now_ms)


#: Columns ``update`` and ``configure`` may write (the keys are never user text).
_COLUMNS = frozenset(
    {
        "name",
        "avatar",
        "description",
        "announcement",
        "join_approval",
        "invite_policy",
        "history_visible",
        "mute_all",
        "max_members",
    }
)


def _write_fields(
    tx: Tx,
    timeline: Timeline,
    group: Group,
    actor: str,
    event: str,
    fields: Mapping[str, object],
    now_ms: int,
) -> Change:
    """Write the fields that differ from ``group``'s and one message listing them;
    nothing at all (no message, no seq) if none differs."""
    if not fields or not _COLUMNS.issuperset(fields):
        raise ValueError(f"not group fields: {sorted(fields)}")
    changed = {
        name: fields[name] for name in sorted(fields) if getattr(group, name) != fields[name]
    }
    if not changed:
        return Change(entry=None)
    assignments = ", ".join(f"{name} = ?" for name in changed)
    tx.run(
        f"UPDATE groups SET {assignments}, updated_at = ? WHERE id = ?",  # names checked
        *changed.values(),
        tx.time_in(now_ms),
        group.id,
    )
    return timeline.record(actor, event, {**changed, "by": actor}, now_ms=now_ms)


def set_alias(tx: Tx, group_id: str, user: str, alias: str, now_ms: int) -> Change:
    timeline, _, _ = open_change(tx, group_id, user)
    tx.run(
        "UPDATE group_members SET alias = ? WHERE group_id = ? AND user_id = ?",
        alias,
        group_id,
        user,
    )
    return timeline.record(user, "member.alias", {"user": user, "alias": alias}, now_ms=now_ms)
