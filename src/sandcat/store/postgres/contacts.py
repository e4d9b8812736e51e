"""Friend requests and friendships in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sandcat.errors import Conflict, NotFound, SandcatError
from sandcat.ids import direct_cid
from sandcat.store.contacts import Friend, FriendRequest
from sandcat.store.postgres.conversations import open_conversation
from sandcat.store.postgres.database import Connection, Database, at, ms

_REQUEST_COLUMNS = "id, from_user, to_user, message, remark, status, created_at, updated_at"
_FRIEND_COLUMNS = "u.id, u.username, u.display_name, u.avatar, f.remark, f.since"
_PENDING = "a friend request to this user is already pending"
_CONFLICTS: dict[str, Callable[[], SandcatError]] = {
    "friend_requests_pending": lambda: Conflict(_PENDING, field="to"),
}


def _request(row: Any) -> FriendRequest:
    id_, from_user, to_user, message, remark, status, created, updated = row
    return FriendRequest(
        id=id_,
        from_user=from_user,
        to_user=to_user,
        message=message,
        remark=remark,
        status=status,
        created_at=ms(created),
        updated_at=ms(updated),
    )


def _friend(row: Any) -> Friend:
    id_, username, display_name, avatar, remark, since = row
    return Friend(
        id=id_,
        username=username,
        display_name=display_name,
        avatar=avatar,
        remark=remark,
        since=ms(since),
    )


def _pending_to(conn: Connection, request_id: str, user: str) -> FriendRequest:
    row = conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
        "WHERE id = %s AND to_user = %s AND status = 'pending' FOR UPDATE",
        (request_id, user),
    ).fetchone()
    if row is None:
        # The same answer whether the request is someone else's or gone.
        raise NotFound("no such pending friend request")
    return _request(row)


class PostgresContactStore:
    """``ContactStore`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_request(self, request: FriendRequest) -> FriendRequest:
        def insert(conn: Connection) -> FriendRequest:
            if (
                conn.execute("SELECT 1 FROM users WHERE id = %s", (request.to_user,)).fetchone()
                is None
            ):
                raise NotFound("no such user", field="to")
            pair = (request.from_user, request.to_user)
            if conn.execute(
                "SELECT 1 FROM friends WHERE user_id = %s AND friend_id = %s", pair
            ).fetchone():
                raise Conflict("already friends", field="to")
            if conn.execute(
                "SELECT 1 FROM friend_requests "
                "WHERE from_user = %s AND to_user = %s AND status = 'pending'",
                pair,
            ).fetchone():
                raise Conflict(_PENDING, field="to")
            conn.execute(
                f"INSERT INTO friend_requests ({_REQUEST_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s)",
                (
                    request.id,
                    request.from_user,
                    request.to_user,
                    request.message,
                    request.remark,
                    at(request.created_at),
                    at(request.updated_at),
                ),
            )
            return request

        return await self._db.write(insert, conflicts=_CONFLICTS)

    async def list_requests(self, user: str) -> list[FriendRequest]:
        def select(conn: Connection) -> list[FriendRequest]:
            rows = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
                "WHERE (to_user = %(user)s OR from_user = %(user)s) AND status = 'pending' "
                'ORDER BY created_at DESC, id COLLATE "C"',
                {"user": user},
            ).fetchall()
            return [_request(row) for row in rows]

        return await self._db.read(select)

    async def accept_request(
        self, request_id: str, *, user: str, remark: str, now_ms: int
    ) -> Friend:
        def accept(conn: Connection) -> Friend:
            request = _pending_to(conn, request_id, user)
            requester = request.from_user
            conn.execute(
                "UPDATE friend_requests SET status = 'accepted', updated_at = %(now)s "
                "WHERE status = 'pending' AND ((from_user = %(a)s AND to_user = %(b)s) "
                "OR (from_user = %(b)s AND to_user = %(a)s))",
                {"now": at(now_ms), "a": requester, "b": user},
            )
            version = open_conversation(
                conn,
                cid=direct_cid(requester, user),
                kind="direct",
                members=(requester, user),
                now_ms=now_ms,
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO friends (user_id, friend_id, remark, since, version) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, friend_id) DO UPDATE SET "
                    "remark = excluded.remark, since = excluded.since, version = excluded.version",
                    [
                        (requester, user, request.remark, at(now_ms), version),
                        (user, requester, remark, at(now_ms), version),
                    ],
                )
            row = conn.execute(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = %s AND f.friend_id = %s",
                (user, requester),
            ).fetchone()
            return _friend(row)

        return await self._db.write(accept)

    async def reject_request(self, request_id: str, *, user: str, now_ms: int) -> FriendRequest:
        def reject(conn: Connection) -> FriendRequest:
            request = _pending_to(conn, request_id, user)
            conn.execute(
                "UPDATE friend_requests SET status = 'rejected', updated_at = %s WHERE id = %s",
                (at(now_ms), request_id),
            )
            return replace(request, status="rejected", updated_at=now_ms)

        return await self._db.write(reject)

    async def list_friends(self, user: str) -> list[Friend]:
        def select(conn: Connection) -> list[Friend]:
            rows = conn.execute(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                'WHERE f.user_id = %s ORDER BY u.username_key COLLATE "C"',
                (user,),
            ).fetchall()
            return [_friend(row) for row in rows]

        return await self._db.read(select)
