"""Friend requests and friendships in SQLite."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from sandcat.errors import Conflict, NotFound
from sandcat.ids import direct_cid
from sandcat.store.contacts import Friend, FriendRequest
from sandcat.store.sqlite.conversations import open_conversation
from sandcat.store.sqlite.database import Database


def _request(row: Any) -> FriendRequest:
    id_, from_user, to_user, message, remark, status, created, updated = row
    return FriendRequest(
        id=id_,
        from_user=from_user,
        to_user=to_user,
        message=message,
        remark=remark,
        status=status,
        created_at=created,
        updated_at=updated,
    )


def _friend(row: Any) -> Friend:
    id_, username, display_name, avatar, remark, since = row
    return Friend(
        id=id_,
        username=username,
        display_name=display_name,
        avatar=avatar,
        remark=remark,
        since=since,
    )


def _pending_to(conn: sqlite3.Connection, request_id: str, user: str) -> FriendRequest:
    row = conn.execute(
        "SELECT id, from_user, to_user, message, remark, status, created_at, updated_at FROM "
        "friend_requests "
        "WHERE id = ? AND to_user = ? AND status = 'pending'",
        (request_id, user),
    ).fetchone()
    if row is None:
        # The same answer whether the request is someone else's or gone.
        raise NotFound("no such pending friend request")
    return _request(row)


class SqliteContactStore:
    """``ContactStore`` over a SQLite ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_request(self, request: FriendRequest) -> FriendRequest:
        def insert(conn: sqlite3.Connection) -> FriendRequest:
            if (
                conn.execute("SELECT 1 FROM users WHERE id = ?", (request.to_user,)).fetchone()
                is None
            ):
                raise NotFound("no such user", field="to")
            pair = (request.from_user, request.to_user)
            if conn.execute(
                "SELECT 1 FROM friends WHERE user_id = ? AND friend_id = ?", pair
            ).fetchone():
                raise Conflict("already friends", field="to")
            if conn.execute(
                "SELECT 1 FROM friend_requests "
                "WHERE from_user = ? AND to_user = ? AND status = 'pending'",
                pair,
            ).fetchone():
                raise Conflict("a friend request to this user is already pending", field="to")
            conn.execute(
                "INSERT INTO friend_requests (id, from_user, to_user, message, remark, status, "
                "created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.id,
                    request.from_user,
                    request.to_user,
                    request.message,
                    request.remark,
                    "pending",
                    request.created_at,
                    request.updated_at,
                ),
            )
            return request

        return await self._db.write(insert)

    async def list_requests(self, user: str) -> list[FriendRequest]:
        def select(conn: sqlite3.Connection) -> list[FriendRequest]:
            rows = conn.execute(
                "SELECT id, from_user, to_user, message, remark, status, created_at, updated_at "
                "FROM friend_requests "
                "WHERE (to_user = ?1 OR from_user = ?1) AND status = 'pending' "
                "ORDER BY created_at DESC, id",
                (user,),
            ).fetchall()
            return [_request(row) for row in rows]

        return await self._db.read(select)

    async def accept_request(
        self, request_id: str, *, user: str, remark: str, now_ms: int
    ) -> Friend:
        def accept(conn: sqlite3.Connection) -> Friend:
            request = _pending_to(conn, request_id, user)
            requester = request.from_user
            conn.execute(
                "UPDATE friend_requests SET status = 'accepted', updated_at = ?1 "
                "WHERE status = 'pending' AND ((from_user = ?2 AND to_user = ?3) "
                "OR (from_user = ?3 AND to_user = ?2))",
                (now_ms, requester, user),
            )
            version = open_conversation(
                conn,
                cid=direct_cid(requester, user),
                kind="direct",
                members=(requester, user),
                now_ms=now_ms,
            )
            conn.executemany(
                "INSERT INTO friends (user_id, friend_id, remark, since, version) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, friend_id) DO UPDATE SET "
                "remark = excluded.remark, since = excluded.since, version = excluded.version",
                [
                    (requester, user, request.remark, now_ms, version),
                    (user, requester, remark, now_ms, version),
                ],
            )
            row = conn.execute(
                "SELECT u.id, u.username, u.display_name, u.avatar, f.remark, f.since "
                "FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = ? AND f.friend_id = ?",
                (user, requester),
            ).fetchone()
            return _friend(row)

        return await self._db.write(accept)

    async def reject_request(self, request_id: str, *, user: str, now_ms: int) -> FriendRequest:
        def reject(conn: sqlite3.Connection) -> FriendRequest:
            request = _pending_to(conn, request_id, user)
            conn.execute(
                "UPDATE friend_requests SET status = 'rejected', updated_at = ? WHERE id = ?",
                (now_ms, request_id),
            )
            return replace(request, status="rejected", updated_at=now_ms)

        return await self._db.write(reject)

    async def list_friends(self, user: str) -> list[Friend]:
        def select(conn: sqlite3.Connection) -> list[Friend]:
            rows = conn.execute(
                "SELECT u.id, u.username, u.display_name, u.avatar, f.remark, f.since "
                "FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = ? ORDER BY u.username_key",
                (user,),
            ).fetchall()
            return [_friend(row) for row in rows]

        return await self._db.read(select)
