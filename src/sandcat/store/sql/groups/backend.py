"""The group store's queries and changes, shared by the SQLite and PostgreSQL stores.

Each engine's store subclasses ``PortableGroupStore`` with its database and
its ``Dialect``; the rules and statements live in ``groups.changes`` and
``groups.queries``, written once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.errors import NotFound
from sandcat.store.groups import (
    AvatarChange,
    BanPage,
    Change,
    Fields,
    Invited,
    InviteLink,
    JoinRequest,
    MemberPage,
    Requested,
    Role,
)
from sandcat.store.sql._tx import SqlStore, Tx
from sandcat.store.sql.groups import bans as bans
from sandcat.store.sql.groups import changes as changes
from sandcat.store.sql.groups import invites as invites
from sandcat.store.sql.groups import queries as queries
from sandcat.store.sql.groups.roster import require_manager


class PortableGroupStore(SqlStore):
    """``GroupChanges`` and ``role_of`` over a database and its dialect."""

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
