"""The group store over either engine: ``SqlGroupStore(db, dialect)``.

The rules and statements live in ``groups.changes`` and ``groups.queries``,
written once. In cluster mode (PostgreSQL with an outbox) the dialect writes
each change's system message to the outbox in the change's transaction, like
a sent message, and ``committed`` wakes the publisher.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.errors import BadRequest, NotFound
from sandcat.ids import group_cid
from sandcat.store.groups import (
    AvatarChange,
    BanPage,
    Change,
    Fields,
    Group,
    GroupMember,
    Invited,
    InviteLink,
    JoinRequest,
    MemberPage,
    Requested,
    Role,
)
from sandcat.store.inbox import Notice
from sandcat.store.sql._tx import SqlStore, Tx
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sql.groups import bans as bans
from sandcat.store.sql.groups import changes as changes
from sandcat.store.sql.groups import invites as invites
from sandcat.store.sql.groups import queries as queries
from sandcat.store.sql.groups.roster import invitations, require_manager


class SqlGroupStore(SqlStore):
    """``GroupStore`` and ``GroupChanges`` over either engine's ``Database``."""

    async def create_group(self, group: Group, members: list[GroupMember]) -> tuple[Notice, ...]:
        return await self._write(lambda tx: _create(tx, group, members))

    async def get_group(self, group_id: str) -> Group | None:
        return await self._read(lambda tx: queries.load_group(tx, group_id))

    async def list_members(self, group_id: str) -> list[GroupMember]:
        page = await self._read(
            lambda tx: queries.members_page(tx, group_id, offset=0, limit=2**31 - 1)
        )
        return list(page.members)

    async def list_groups(self, user: str) -> list[Group]:
        def select(tx: Tx) -> list[Group]:
            rows = tx.all(
                f"SELECT {queries.GROUP_COLUMNS} FROM groups "
                "WHERE id IN (SELECT group_id FROM group_members WHERE user_id = ?) "
                f"AND dismissed_at IS NULL ORDER BY created_at DESC, id{tx.dialect.collate}",
                user,
            )
            return [queries.group_from(tx, row) for row in rows]

        return await self._read(select)

    async def role_of(self, group_id: str, user: str) -> Role | None:
        return await self._read(lambda tx: queries.role_of(tx, group_id, user))

    async def invite(
        self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int
    ) -> Invited:
        return await self._write(lambda tx: changes.invite(tx, group_id, actor, users, now_ms))

    async def request_join(
        self, group_id: str, user: str, message: str, *, token: str, now_ms: int
    ) -> Requested:
        return await self._write(
            lambda tx: changes.request_join(tx, group_id, user, message, token, now_ms)
        )

    async def decide(self, request_id: str, actor: str, *, approve: bool, now_ms: int) -> Requested:
        return await self._write(lambda tx: changes.decide(tx, request_id, actor, approve, now_ms))

    async def remove(
        self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int, ban: bool = False
    ) -> Change:
        return await self._write(lambda tx: changes.remove(tx, group_id, actor, users, now_ms, ban))

    async def ban(self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int) -> Change:
        return await self._write(lambda tx: bans.ban(tx, group_id, actor, users, now_ms))

    async def unban(
        self, group_id: str, actor: str, users: Sequence[str], *, now_ms: int
    ) -> Change:
        return await self._write(lambda tx: bans.unban(tx, group_id, actor, users, now_ms))

    async def bans_page(self, group_id: str, actor: str, *, offset: int, limit: int) -> BanPage:
        def select(tx: Tx) -> BanPage:
            role = queries.role_of(tx, group_id, actor)
            if role is None:
                raise NotFound("no such group")
            require_manager(role, "see the ban list")
            return bans.bans_page(tx, group_id, offset=offset, limit=limit)

        return await self._read(select)

    async def create_invite(self, link: InviteLink, *, now_ms: int) -> InviteLink:
        return await self._write(lambda tx: invites.create(tx, link, now_ms))

    async def revoke_invite(
        self, group_id: str, actor: str, invite_id: str, *, now_ms: int
    ) -> InviteLink:
        return await self._write(lambda tx: invites.revoke(tx, group_id, actor, invite_id, now_ms))

    async def invites(self, group_id: str, actor: str, *, now_ms: int) -> list[InviteLink]:
        return await self._read(lambda tx: invites.working(tx, group_id, actor, now_ms))

    async def leave(self, group_id: str, user: str, *, now_ms: int) -> Change:
        return await self._write(lambda tx: changes.leave(tx, group_id, user, now_ms))

    async def dismiss(self, group_id: str, actor: str, *, now_ms: int) -> Change:
        return await self._write(lambda tx: changes.dismiss(tx, group_id, actor, now_ms))

    async def transfer(self, group_id: str, actor: str, to: str, *, now_ms: int) -> Change:
        return await self._write(lambda tx: changes.transfer(tx, group_id, actor, to, now_ms))

    async def set_role(
        self, group_id: str, actor: str, user: str, role: Role, *, now_ms: int
    ) -> Change:
        return await self._write(
            lambda tx: changes.set_role(tx, group_id, actor, user, role, now_ms)
        )

    async def mute(
        self, group_id: str, actor: str, user: str, until_ms: int, *, now_ms: int
    ) -> Change:
        return await self._write(
            lambda tx: changes.mute(tx, group_id, actor, user, until_ms, now_ms)
        )

    async def update(self, group_id: str, actor: str, fields: Fields, *, now_ms: int) -> Change:
        return await self._write(lambda tx: changes.update(tx, group_id, actor, fields, now_ms))

    async def configure(self, group_id: str, actor: str, fields: Fields, *, now_ms: int) -> Change:
        return await self._write(lambda tx: changes.configure(tx, group_id, actor, fields, now_ms))

    async def set_avatar(
        self, group_id: str, actor: str, file_id: str, *, now_ms: int
    ) -> AvatarChange:
        return await self._write(
            lambda tx: changes.set_avatar(tx, group_id, actor, file_id, now_ms)
        )

    async def set_alias(self, group_id: str, user: str, alias: str, *, now_ms: int) -> Change:
        return await self._write(lambda tx: changes.set_alias(tx, group_id, user, alias, now_ms))

    async def requests(self, group_id: str, actor: str) -> list[JoinRequest]:
        def select(tx: Tx) -> list[JoinRequest]:
            role = queries.role_of(tx, group_id, actor)
            if role is None:
                raise NotFound("no such group")
            require_manager(role, "see join requests")
            return queries.pending_requests(tx, group_id)

        return await self._read(select)

    async def members_page(
        self, group_id: str, actor: str, *, offset: int, limit: int, users: Sequence[str] = ()
    ) -> MemberPage:
        def select(tx: Tx) -> MemberPage:
            if queries.role_of(tx, group_id, actor) is None:
                raise NotFound("no such group")
            return queries.members_page(tx, group_id, offset=offset, limit=limit, users=users)

        return await self._read(select)


def _create(tx: Tx, group: Group, members: list[GroupMember]) -> tuple[Notice, ...]:
    others = sorted({m.user for m in members} - {group.owner})
    friends = {
        friend
        for (friend,) in tx.all(
            "SELECT friend_id FROM friends WHERE user_id = ? AND deleted_at IS NULL "
            f"AND {tx.among('friend_id')}",
            group.owner,
            tx.array(others),
        )
    }
    strangers = [user for user in others if user not in friends]
    if strangers:
        raise BadRequest(f"members: not your friends: {', '.join(strangers)}", field="members")
    tx.run(
        "INSERT INTO groups (id, name, avatar, description, announcement, owner, "
        "max_members, created_at, updated_at, join_approval, invite_policy, "
        "history_visible, mute_all) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        group.id,
        group.name,
        group.avatar,
        group.description,
        group.announcement,
        group.owner,
        group.max_members,
        tx.time_in(group.created_at),
        tx.time_in(group.updated_at),
        group.join_approval,
        group.invite_policy,
        group.history_visible,
        group.mute_all,
    )
    tx.many(
        "INSERT INTO group_members (group_id, user_id, role, alias, joined_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(group.id, m.user, m.role, m.alias, tx.time_in(m.joined_at)) for m in members],
    )
    open_conversation(
        tx,
        cid=group_cid(group.id),
        kind="group",
        members=[m.user for m in members],
        now_ms=group.created_at,
    )
    return tx.post(invitations(group, others), group.created_at)
