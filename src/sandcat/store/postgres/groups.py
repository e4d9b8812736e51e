"""Groups and group members in PostgreSQL.

Creation and the reads are here; the changes (invite, remove, roles, mutes,
settings, ...) are shared with SQLite (``store.sql.groups.backend``) and run here
through its ``dialect``. In cluster mode each change's system message also gets
its outbox row in the change's transaction, like a sent message.
"""

from __future__ import annotations

from sandcat.errors import BadRequest
from sandcat.ids import group_cid
from sandcat.store.groups import Group, GroupMember, Role
from sandcat.store.inbox import Notice
from sandcat.store.outbox import Outbox
from sandcat.store.postgres.conversations import open_conversation
from sandcat.store.postgres.database import Connection, Database, at
from sandcat.store.postgres.dialect import DIALECT, dialect
from sandcat.store.postgres.inbox import post_notices
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups import queries as queries
from sandcat.store.sql.groups.backend import PortableGroupStore
from sandcat.store.sql.groups.roster import invitations


def send_refusal(conn: Connection, sender: str, cid: str, now_ms: int) -> str | None:
    """Why ``sender`` may not post in ``cid`` now (a group mute), or None; for the append."""
    return queries.send_refusal(Tx(conn, DIALECT), sender, cid, now_ms)


def role_in(conn: Connection, group_id: str, user: str) -> Role | None:
    """``user``'s role in a live group, inside the caller's transaction (e.g. the
    append's, to check an ``@all`` mention); None if not a member or dismissed."""
    return queries.role_of(Tx(conn, DIALECT), group_id, user)


class PostgresGroupStore(PortableGroupStore):
    """``GroupStore`` and ``GroupChanges`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database, *, outbox: Outbox | None = None) -> None:
        super().__init__(
            db,
            dialect(None if outbox is None else outbox.owner),
            committed=None if outbox is None else outbox.signal.set,
        )
        self._pg = db

    async def create_group(self, group: Group, members: list[GroupMember]) -> tuple[Notice, ...]:
        others = sorted({m.user for m in members} - {group.owner})

        def insert(conn: Connection) -> tuple[Notice, ...]:
            friends = {
                friend
                for (friend,) in conn.execute(
                    "SELECT friend_id FROM friends WHERE user_id = %s AND deleted_at IS NULL "
                    "AND friend_id = ANY(%s)",
                    (group.owner, others),
                )
            }
            strangers = [user for user in others if user not in friends]
            if strangers:
                raise BadRequest(
                    f"members: not your friends: {', '.join(strangers)}", field="members"
                )
            conn.execute(
                "INSERT INTO groups (id, name, avatar, description, announcement, owner, "
                "max_members, created_at, updated_at, join_approval, invite_policy, "
                "history_visible, mute_all) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    group.id,
                    group.name,
                    group.avatar,
                    group.description,
                    group.announcement,
                    group.owner,
                    group.max_members,
                    at(group.created_at),
                    at(group.updated_at),
                    group.join_approval,
                    group.invite_policy,
                    group.history_visible,
                    group.mute_all,
                ),
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO group_members (group_id, user_id, role, alias, joined_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [(group.id, m.user, m.role, m.alias, at(m.joined_at)) for m in members],
                )
            open_conversation(
                conn,
                cid=group_cid(group.id),
                kind="group",
                members=[m.user for m in members],
                now_ms=group.created_at,
            )
            return post_notices(conn, invitations(group, others), now_ms=group.created_at)

        return await self._pg.write(insert)

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
                'AND dismissed_at IS NULL ORDER BY created_at DESC, id COLLATE "C"',
                user,
            )
            return [queries.group_from(tx, row) for row in rows]

        return await self._read(select)
