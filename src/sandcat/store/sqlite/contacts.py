"""Friend requests, friendships and blocks in SQLite."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from sandcat.errors import Conflict, NotFound, RateLimited
from sandcat.ids import direct_cid
from sandcat.store.contacts import Blocked, ContactChanges, Friend, FriendRequest
from sandcat.store.inbox import NewNotice, Posted
from sandcat.store.sqlite.conversations import bump_version, open_conversation, set_can_send
from sandcat.store.sqlite.database import Database
from sandcat.store.sqlite.inbox import post_notices

_REQUEST_COLUMNS = "id, from_user, to_user, message, remark, status, created_at, updated_at"
_FRIEND_COLUMNS = "u.id, u.username, u.display_name, u.avatar, f.remark, f.since, f.deleted_at"


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
    id_, username, display_name, avatar, remark, since, deleted_at = row
    return Friend(
        id=id_,
        username=username,
        display_name=display_name,
        avatar=avatar,
        remark=remark,
        since=since,
        deleted=deleted_at is not None,
    )


def _request_to(
    conn: sqlite3.Connection, request_id: str, user: str, *, side: str
) -> FriendRequest:
    row = conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
        f"WHERE id = ? AND {side} = ? AND status = 'pending'",
        (request_id, user),
    ).fetchone()
    if row is None:
        # The same answer whether the request is someone else's or gone.
        raise NotFound("no such pending friend request")
    return _request(row)


def _set_status(
    conn: sqlite3.Connection, request: FriendRequest, status: str, now_ms: int
) -> FriendRequest:
    conn.execute(
        "UPDATE friend_requests SET status = ?, updated_at = ?, version = ? WHERE id = ?",
        (status, now_ms, bump_version(conn), request.id),
    )
    return replace(request, status=status, updated_at=now_ms)  # type: ignore[arg-type]


def _is_friend(conn: sqlite3.Connection, user: str, friend: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM friends WHERE user_id = ? AND friend_id = ? AND deleted_at IS NULL",
        (user, friend),
    ).fetchone()
    return row is not None


def _blocks(conn: sqlite3.Connection, user: str, target: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?", (user, target)
    ).fetchone()
    return row is not None


def _friend_view(conn: sqlite3.Connection, user: str, friend: str) -> Friend:
    row = conn.execute(
        f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
        "WHERE f.user_id = ? AND f.friend_id = ?",
        (user, friend),
    ).fetchone()
    return _friend(row)


def _cooldown_left(conn: sqlite3.Connection, request: FriendRequest, cooldown_ms: int) -> int:
    """How long the requester must still wait after a rejection or an unfriending."""
    if cooldown_ms <= 0:
        return 0
    since = request.created_at - cooldown_ms
    (rejected,) = conn.execute(
        "SELECT MAX(updated_at) FROM friend_requests "
        "WHERE from_user = ? AND to_user = ? AND status = 'rejected' AND updated_at > ?",
        (request.from_user, request.to_user, since),
    ).fetchone()
    (deleted,) = conn.execute(
        "SELECT deleted_at FROM friends WHERE user_id = ? AND friend_id = ? "
        "AND deleted_by = ? AND deleted_at > ?",
        (request.to_user, request.from_user, request.to_user, since),
    ).fetchone() or (None,)
    latest = max((t for t in (rejected, deleted) if t is not None), default=None)
    return 0 if latest is None else int(latest) + cooldown_ms - request.created_at


class SqliteContactStore:
    """``ContactStore`` over a SQLite ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- requests ----------------------------------------------------------------------

    async def create_request(
        self, request: FriendRequest, *, cooldown_ms: int = 0
    ) -> Posted[FriendRequest]:
        sender, target = request.from_user, request.to_user

        def insert(conn: sqlite3.Connection) -> Posted[FriendRequest]:
            row = conn.execute(
                "SELECT username, display_name FROM users WHERE id = ? AND disabled = 0",
                (sender,),
            ).fetchone()
            exists = conn.execute(
                "SELECT 1 FROM users WHERE id = ? AND disabled = 0", (target,)
            ).fetchone()
            # Blocked by the addressee: the same answer as for nobody at all.
            if row is None or exists is None or _blocks(conn, target, sender):
                raise NotFound("no such user", field="to")
            if _blocks(conn, sender, target):
                raise Conflict("you block this user; unblock them first", field="to")
            if _is_friend(conn, sender, target):
                raise Conflict("already friends", field="to")
            pending = conn.execute(
                "SELECT from_user FROM friend_requests WHERE status = 'pending' AND "
                "((from_user = ?1 AND to_user = ?2) OR (from_user = ?2 AND to_user = ?1))",
                (sender, target),
            ).fetchone()
            if pending is not None:
                reason = (
                    "a friend request to this user is already pending"
                    if pending[0] == sender
                    else "this user already asked you; accept their request"
                )
                raise Conflict(reason, field="to")
            wait_ms = _cooldown_left(conn, request, cooldown_ms)
            if wait_ms > 0:
                raise RateLimited(
                    "this user declined recently; try again later", retry_after_ms=wait_ms
                )
            conn.execute(
                f"INSERT INTO friend_requests ({_REQUEST_COLUMNS}, version) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (
                    request.id,
                    sender,
                    target,
                    request.message,
                    request.remark,
                    request.created_at,
                    request.updated_at,
                    bump_version(conn),
                ),
            )
            data = {
                "request": request.id,
                "from": sender,
                "username": row[0],
                "display_name": row[1],
                "message": request.message,
            }
            notices = post_notices(
                conn,
                [NewNotice(target, "friend.requested", data)],
                now_ms=request.created_at,
            )
            return Posted(request, notices)

        return await self._db.write(insert)

    async def list_requests(self, user: str) -> list[FriendRequest]:
        def select(conn: sqlite3.Connection) -> list[FriendRequest]:
            rows = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
                "WHERE (to_user = ?1 OR from_user = ?1) AND status = 'pending' "
                "ORDER BY created_at DESC, id",
                (user,),
            ).fetchall()
            return [_request(row) for row in rows]

        return await self._db.read(select)

    async def accept_request(
        self, request_id: str, *, user: str, remark: str, now_ms: int
    ) -> Posted[Friend]:
        def accept(conn: sqlite3.Connection) -> Posted[Friend]:
            request = _request_to(conn, request_id, user, side="to_user")
            requester = request.from_user
            _set_status(conn, request, "accepted", now_ms)
            cid = direct_cid(requester, user)
            version = open_conversation(
                conn, cid=cid, kind="direct", members=(requester, user), now_ms=now_ms
            )
            conn.executemany(
                "INSERT INTO friends (user_id, friend_id, remark, since, version) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, friend_id) DO UPDATE SET "
                "remark = excluded.remark, since = excluded.since, version = excluded.version, "
                "deleted_at = NULL, deleted_by = NULL",
                [
                    (requester, user, request.remark, now_ms, version),
                    (user, requester, remark, now_ms, version),
                ],
            )
            data = {"request": request.id, "friend": user, "cid": cid}
            notices = post_notices(
                conn, [NewNotice(requester, "friend.accepted", data)], now_ms=now_ms
            )
            return Posted(_friend_view(conn, user, requester), notices)

        return await self._db.write(accept)

    async def reject_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        def reject(conn: sqlite3.Connection) -> Posted[FriendRequest]:
            request = _request_to(conn, request_id, user, side="to_user")
            rejected = _set_status(conn, request, "rejected", now_ms)
            data = {"request": request.id, "by": user}
            notices = post_notices(
                conn, [NewNotice(request.from_user, "friend.rejected", data)], now_ms=now_ms
            )
            return Posted(rejected, notices)

        return await self._db.write(reject)

    async def cancel_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        def cancel(conn: sqlite3.Connection) -> Posted[FriendRequest]:
            request = _request_to(conn, request_id, user, side="from_user")
            cancelled = _set_status(conn, request, "cancelled", now_ms)
            data = {"request": request.id, "from": user}
            notices = post_notices(
                conn, [NewNotice(request.to_user, "friend.cancelled", data)], now_ms=now_ms
            )
            return Posted(cancelled, notices)

        return await self._db.write(cancel)

    # -- friends -----------------------------------------------------------------------

    async def list_friends(self, user: str) -> list[Friend]:
        def select(conn: sqlite3.Connection) -> list[Friend]:
            rows = conn.execute(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = ? AND f.deleted_at IS NULL ORDER BY u.username_key",
                (user,),
            ).fetchall()
            return [_friend(row) for row in rows]

        return await self._db.read(select)

    async def delete_friend(self, user: str, friend: str, *, now_ms: int) -> Posted[None]:
        def delete(conn: sqlite3.Connection) -> Posted[None]:
            if not _is_friend(conn, user, friend):
                raise NotFound("not a friend of yours")
            cid = direct_cid(user, friend)
            conn.execute(
                "UPDATE friends SET deleted_at = ?1, deleted_by = ?2, version = ?3 "
                "WHERE (user_id = ?2 AND friend_id = ?4) OR (user_id = ?4 AND friend_id = ?2)",
                (now_ms, user, bump_version(conn), friend),
            )
            # Both keep the history; neither can write until they are friends again.
            set_can_send(conn, cid=cid, users=(user, friend), can_send=False)
            data = {"by": user, "cid": cid}
            notices = post_notices(conn, [NewNotice(friend, "friend.deleted", data)], now_ms=now_ms)
            return Posted(None, notices)

        return await self._db.write(delete)

    async def set_remark(self, user: str, friend: str, remark: str, *, now_ms: int) -> Friend:
        def update(conn: sqlite3.Connection) -> Friend:
            if not _is_friend(conn, user, friend):
                raise NotFound("not a friend of yours")
            conn.execute(
                "UPDATE friends SET remark = ?, version = ? WHERE user_id = ? AND friend_id = ?",
                (remark, bump_version(conn), user, friend),
            )
            return _friend_view(conn, user, friend)

        return await self._db.write(update)

    async def changes(self, user: str, *, since: int) -> ContactChanges:
        def select(conn: sqlite3.Connection) -> ContactChanges:
            (version,) = conn.execute(
                "SELECT value FROM counters WHERE name = 'version'"
            ).fetchone()
            # A since from the future (another server's data, a reset) means: everything.
            floor = -1 if since > version else since
            friends = conn.execute(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = ? AND f.version > ? ORDER BY f.version",
                (user, floor),
            ).fetchall()
            requests = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
                "WHERE (to_user = ?1 OR from_user = ?1) AND version > ?2 ORDER BY version",
                (user, floor),
            ).fetchall()
            return ContactChanges(
                [_friend(row) for row in friends], [_request(row) for row in requests], version
            )

        return await self._db.read(select)

    # -- blocks ------------------------------------------------------------------------

    async def block(self, user: str, target: str, *, now_ms: int) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            exists = conn.execute("SELECT 1 FROM users WHERE id = ?", (target,)).fetchone()
            if exists is None or target == user:
                raise NotFound("no such user")
            version = bump_version(conn)
            conn.execute(
                "INSERT INTO blocks (user_id, blocked_id, created_at, version) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (user, target, now_ms, version),
            )
            # Pending requests either way end silently: nobody is told of a block.
            conn.execute(
                "UPDATE friend_requests SET status = 'cancelled', updated_at = ?1, version = ?2 "
                "WHERE status = 'pending' AND "
                "((from_user = ?3 AND to_user = ?4) OR (from_user = ?4 AND to_user = ?3))",
                (now_ms, version, user, target),
            )
            set_can_send(conn, cid=direct_cid(user, target), users=(user, target), can_send=False)

        await self._db.write(insert)

    async def unblock(self, user: str, target: str, *, now_ms: int) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            removed = conn.execute(
                "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?", (user, target)
            ).rowcount
            if (
                removed
                and not _blocks(conn, target, user)
                and _is_friend(conn, user, target)
                and _is_friend(conn, target, user)
            ):
                set_can_send(
                    conn, cid=direct_cid(user, target), users=(user, target), can_send=True
                )

        await self._db.write(delete)

    async def list_blocks(self, user: str) -> list[Blocked]:
        def select(conn: sqlite3.Connection) -> list[Blocked]:
            rows = conn.execute(
                "SELECT u.id, u.username, u.display_name, u.avatar, b.created_at "
                "FROM blocks b JOIN users u ON u.id = b.blocked_id "
                "WHERE b.user_id = ? ORDER BY b.created_at DESC, u.id",
                (user,),
            ).fetchall()
            return [
                Blocked(id=i, username=n, display_name=d, avatar=a, since=s)
                for i, n, d, a, s in rows
            ]

        return await self._db.read(select)
