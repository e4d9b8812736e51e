"""Groups and group members in PostgreSQL."""

from __future__ import annotations

from typing import Any

from sandcat.errors import BadRequest
from sandcat.ids import group_cid
from sandcat.store.groups import Group, GroupMember
from sandcat.store.postgres.conversations import open_conversation
from sandcat.store.postgres.database import Connection, Database, at, ms, ms_or_none

_GROUP_COLUMNS = (
    "g.id, g.name, g.owner, g.max_members, g.avatar, g.description, g.announcement, "
    "g.created_at, g.updated_at, g.dismissed_at"
)


def _group(row: Any) -> Group:
    id_, name, owner, max_members, avatar, description, announcement, created, updated, gone = row
    return Group(
        id=id_,
        name=name,
        owner=owner,
        max_members=max_members,
        avatar=avatar,
        description=description,
        announcement=announcement,
        created_at=ms(created),
        updated_at=ms(updated),
        dismissed_at=ms_or_none(gone),
    )


class PostgresGroupStore:
    """``GroupStore`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_group(self, group: Group, members: list[GroupMember]) -> None:
        others = sorted({m.user for m in members} - {group.owner})

        def insert(conn: Connection) -> None:
            friends = {
                friend
                for (friend,) in conn.execute(
                    "SELECT friend_id FROM friends WHERE user_id = %s AND friend_id = ANY(%s)",
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
                "max_members, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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

        await self._db.write(insert)

    async def get_group(self, group_id: str) -> Group | None:
        def select(conn: Connection) -> Group | None:
            row = conn.execute(
                f"SELECT {_GROUP_COLUMNS} FROM groups g WHERE g.id = %s", (group_id,)
            ).fetchone()
            return None if row is None else _group(row)

        return await self._db.read(select)

    async def list_members(self, group_id: str) -> list[GroupMember]:
        def select(conn: Connection) -> list[GroupMember]:
            rows = conn.execute(
                "SELECT user_id, role, alias, joined_at FROM group_members WHERE group_id = %s "
                "ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, "
                'joined_at, user_id COLLATE "C"',
                (group_id,),
            ).fetchall()
            return [
                GroupMember(user=user, role=role, alias=alias, joined_at=ms(joined))
                for user, role, alias, joined in rows
            ]

        return await self._db.read(select)

    async def list_groups(self, user: str) -> list[Group]:
        def select(conn: Connection) -> list[Group]:
            rows = conn.execute(
                f"SELECT {_GROUP_COLUMNS} FROM groups g "
                "JOIN group_members m ON m.group_id = g.id "
                "WHERE m.user_id = %s AND g.dismissed_at IS NULL "
                'ORDER BY g.created_at DESC, g.id COLLATE "C"',
                (user,),
            ).fetchall()
            return [_group(row) for row in rows]

        return await self._db.read(select)
