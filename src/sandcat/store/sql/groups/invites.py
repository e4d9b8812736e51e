"""Invite links, over either backend (``store.sql._tx``).

Joining a group by its id needs the token of one of its links: a group id is
no secret (it is in every ``g:`` cid, e.g. a forwarded message's
``forward.cid``). Who may make a link follows the group's ``invite_policy``
(every member, or only the owner and admins); its creator, the owner or an
admin may revoke it. A link works until it is revoked, expires or has been
used ``max_uses`` times; a use is a join, or under join approval a new join
request (``group_changes.request_join``). Links are not timeline events: no
system message, no seq.
"""

from __future__ import annotations

from typing import Any

from sandcat.errors import Conflict, Forbidden, NotFound
from sandcat.store.groups import MAX_LIVE_INVITES, InviteLink
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups.queries import role_of
from sandcat.store.sql.groups.roster import MANAGERS, open_change, require_manager

_COLUMNS = "id, group_id, token, created_by, created_at, expires_at, max_uses, uses, revoked_at"
#: A link that still works at the time bound to the first ``?``.
_WORKS = (
    "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) "
    "AND (max_uses IS NULL OR uses < max_uses)"
)
#: The answer for a token that is not one of the group's links, and for a group
#: that does not exist: the same, so a token cannot probe for groups.
NO_INVITE = "no such group or invite link"


def _link_from(tx: Tx, row: Any) -> InviteLink:
    id_, group, token, by, created, expires, max_uses, uses, revoked = row
    return InviteLink(
        id=id_,
        group=group,
        token=token,
        created_by=by,
        created_at=tx.time_out(created),
        expires_at=None if expires is None else tx.time_out(expires),
        max_uses=None if max_uses is None else int(max_uses),
        uses=int(uses),
        revoked_at=None if revoked is None else tx.time_out(revoked),
    )


def create(tx: Tx, link: InviteLink, now_ms: int) -> InviteLink:
    # The timeline's lock serialises creations, so the count below holds.
    _, group, role = open_change(tx, link.group, link.created_by)
    if group.invite_policy == "admins":
        require_manager(role, "make invite links for this group")
    working = tx.one(
        f"SELECT count(*) FROM group_invites WHERE group_id = ? AND {_WORKS}",
        group.id,
        tx.time_in(now_ms),
    )
    if int(working[0]) >= MAX_LIVE_INVITES:
        raise Conflict(f"the group has {MAX_LIVE_INVITES} working invite links: revoke one first")
    tx.run(
        f"INSERT INTO group_invites ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        link.id,
        link.group,
        link.token,
        link.created_by,
        tx.time_in(link.created_at),
        None if link.expires_at is None else tx.time_in(link.expires_at),
        link.max_uses,
        0,
        None,
    )
    return link


def _load(tx: Tx, group_id: str, column: str, value: str) -> InviteLink | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM group_invites WHERE group_id = ? AND {column} = ?",
        group_id,
        value,
    )
    return None if row is None else _link_from(tx, row)


def revoke(tx: Tx, group_id: str, actor: str, invite_id: str, now_ms: int) -> InviteLink:
    _, _, role = open_change(tx, group_id, actor)
    link = _load(tx, group_id, "id", invite_id)
    if link is None:
        raise NotFound("invite: no such invite link in this group", field="invite")
    if link.created_by != actor and role not in MANAGERS:
        raise Forbidden("only its creator, the owner or an admin may revoke an invite link")
    if link.revoked_at is not None:
        raise Conflict("invite: already revoked", field="invite")
    tx.run("UPDATE group_invites SET revoked_at = ? WHERE id = ?", tx.time_in(now_ms), link.id)
    revoked = _load(tx, group_id, "id", invite_id)
    assert revoked is not None
    return revoked


def working(tx: Tx, group_id: str, actor: str, now_ms: int) -> list[InviteLink]:
    """The links that still work: every one for a manager, a member's own otherwise."""
    role = role_of(tx, group_id, actor)
    if role is None:
        raise NotFound("no such group")
    mine = "" if role in MANAGERS else " AND created_by = ?"
    rows = tx.all(
        f"SELECT {_COLUMNS} FROM group_invites WHERE group_id = ? AND {_WORKS}{mine} "
        f"ORDER BY created_at DESC, id{tx.dialect.collate}",
        group_id,
        tx.time_in(now_ms),
        *(() if role in MANAGERS else (actor,)),
    )
    return [_link_from(tx, row) for row in rows]


def find(tx: Tx, group_id: str, token: str) -> InviteLink:
    """The group's link with ``token``, working or not (``NotFound`` if none)."""
    link = _load(tx, group_id, "token", token)
    if link is None:
        raise NotFound(NO_INVITE, field="token")
    return link


def usable(tx: Tx, group_id: str, token: str, now_ms: int) -> InviteLink:
    """The group's link with ``token`` if it still works; ``Forbidden`` saying why not."""
    link = find(tx, group_id, token)
    if link.revoked_at is not None:
        raise Forbidden("this invite link was revoked", field="token", reason="invite_revoked")
    if link.expires_at is not None and link.expires_at <= now_ms:
        raise Forbidden("this invite link has expired", field="token", reason="invite_expired")
    if link.max_uses is not None and link.uses >= link.max_uses:
        raise Forbidden("this invite link has been used up", field="token", reason="invite_used_up")
    return link


def use(tx: Tx, link: InviteLink) -> None:
    """Count one use of ``link`` (checked by ``usable`` under the timeline's lock)."""
    tx.run("UPDATE group_invites SET uses = uses + 1 WHERE id = ?", link.id)
