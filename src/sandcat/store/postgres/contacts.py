"""Friend requests, friendships and blocks in PostgreSQL (the SQLite store's twin).

Each transaction takes its change version once, as late as it can (see
``conversations.bump_version``), and writes notices to the other user's inbox
before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sandcat.errors import Conflict, NotFound, RateLimited, SandcatError
from sandcat.ids import direct_cid
from sandcat.store.contacts import Blocked, ContactChanges, Friend, FriendRequest
from sandcat.store.inbox import NewNotice, Posted
from sandcat.store.postgres.conversations import bump_version, open_conversation, set_can_send
from sandcat.store.postgres.database import Connection, Database, at, ms
from sandcat.store.postgres.inbox import post_notices

_REQUEST_COLUMNS = "id, from_user, to_user, message, remark, status, created_at, updated_at"
_FRIEND_COLUMNS = "u.id, u.username, u.display_name, u.avatar, f.remark, f.since, f.deleted_at"
_PENDING = "a friend request to this user is already pending"
#: Requests between %(a)s and %(b)s, either way.
_PAIR_REQUESTS = (
    "((from_user = %(a)s AND to_user = %(b)s) OR (from_user = %(b)s AND to_user = %(a)s))"
)
_PAIR_FRIENDS = (
    "((user_id = %(a)s AND friend_id = %(b)s) OR (user_id = %(b)s AND friend_id = %(a)s))"
)
_CONFLICTS: dict[str, Callable[[], SandcatError]] = {
    "friend_requests(from_user, to_user)": lambda: Conflict(_PENDING, field="to"),
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
    id_, username, display_name, avatar, remark, since, deleted_at = row
    return Friend(
        id=id_,
        username=username,
        display_name=display_name,
        avatar=avatar,
        remark=remark,
        since=ms(since),
        deleted=deleted_at is not None,
    )


def _request_to(conn: Connection, request_id: str, user: str, *, side: str) -> FriendRequest:
    row = conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
        f"WHERE id = %s AND {side} = %s AND status = 'pending' FOR UPDATE",
        (request_id, user),
    ).fetchone()
    if row is None:
        # The same answer whether the request is someone else's or gone.
        raise NotFound("no such pending friend request")
    return _request(row)


def _set_status(
    conn: Connection, request: FriendRequest, status: str, now_ms: int, version: int
) -> FriendRequest:
    conn.execute(
        "UPDATE friend_requests SET status = %s, updated_at = %s, version = %s WHERE id = %s",
        (status, at(now_ms), version, request.id),
    )
    return replace(request, status=status, updated_at=now_ms)  # type: ignore[arg-type]


def _is_friend(conn: Connection, user: str, friend: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM friends WHERE user_id = %s AND friend_id = %s AND deleted_at IS NULL",
        (user, friend),
    ).fetchone()
    return row is not None


def _blocks(conn: Connection, user: str, target: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM blocks WHERE user_id = %s AND blocked_id = %s", (user, target)
    ).fetchone()
    return row is not None


def _friend_view(conn: Connection, user: str, friend: str) -> Friend:
    row = conn.execute(
        f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
        "WHERE f.user_id = %s AND f.friend_id = %s",
        (user, friend),
    ).fetchone()
    return _friend(row)


def _cooldown_left(conn: Connection, request: FriendRequest, cooldown_ms: int) -> int:
    """How long the requester must still wait after a rejection or an unfriending."""
    if cooldown_ms <= 0:
        return 0
    since = at(request.created_at - cooldown_ms)
    row = conn.execute(
        "SELECT GREATEST("
        "(SELECT MAX(updated_at) FROM friend_requests WHERE from_user = %(a)s "
        "AND to_user = %(b)s AND status = 'rejected' AND updated_at > %(since)s), "
        "(SELECT deleted_at FROM friends WHERE user_id = %(b)s AND friend_id = %(a)s "
        "AND deleted_by = %(b)s AND deleted_at > %(since)s))",
        {"a": request.from_user, "b": request.to_user, "since": since},
    ).fetchone()
    latest = None if row is None else row[0]
    return 0 if latest is None else ms(latest) + cooldown_ms - request.created_at


class PostgresContactStore:
    """``ContactStore`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- requests ----------------------------------------------------------------------

    async def create_request(
        self, request: FriendRequest, *, cooldown_ms: int = 0
    ) -> Posted[FriendRequest]:
        sender, target = request.from_user, request.to_user

        def insert(conn: Connection) -> Posted[FriendRequest]:
            row = conn.execute(
                "SELECT username, display_name FROM users WHERE id = %s AND NOT disabled",
                (sender,),
            ).fetchone()
            exists = conn.execute(
                "SELECT 1 FROM users WHERE id = %s AND NOT disabled", (target,)
            ).fetchone()
            # Blocked by the addressee: the same answer as for nobody at all.
            if row is None or exists is None or _blocks(conn, target, sender):
                raise NotFound("no such user", field="to")
            if _blocks(conn, sender, target):
                raise Conflict("you block this user; unblock them first", field="to")
            if _is_friend(conn, sender, target):
                raise Conflict("already friends", field="to")
            pending = conn.execute(
                "SELECT from_user FROM friend_requests "
                f"WHERE status = 'pending' AND {_PAIR_REQUESTS}",
                {"a": sender, "b": target},
            ).fetchone()
            if pending is not None:
                reason = (
                    _PENDING
                    if pending[0] == sender
                    else "this user already asked you; accept their request"
                )
                raise Conflict(reason, field="to")
            wait_ms = _cooldown_left(conn, request, cooldown_ms)
            if wait_ms > 0:
                raise RateLimited(
                    "this user declined recently; try again later", retry_after_ms=wait_ms
                )
            data = {
                "request": request.id,
                "from": sender,
                "username": row[0],
                "display_name": row[1],
                "message": request.message,
            }
            notices = post_notices(
                conn, [NewNotice(target, "friend.requested", data)], now_ms=request.created_at
            )
            conn.execute(
                f"INSERT INTO friend_requests ({_REQUEST_COLUMNS}, version) "
                "VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s)",
                (
                    request.id,
                    sender,
                    target,
                    request.message,
                    request.remark,
                    at(request.created_at),
                    at(request.updated_at),
                    bump_version(conn),
                ),
            )
            return Posted(request, notices)

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
    ) -> Posted[Friend]:
        def accept(conn: Connection) -> Posted[Friend]:
            request = _request_to(conn, request_id, user, side="to_user")
            requester = request.from_user
            cid = direct_cid(requester, user)
            data = {"request": request.id, "friend": user, "cid": cid}
            notices = post_notices(
                conn, [NewNotice(requester, "friend.accepted", data)], now_ms=now_ms
            )
            version = open_conversation(
                conn, cid=cid, kind="direct", members=(requester, user), now_ms=now_ms
            )
            _set_status(conn, request, "accepted", now_ms, version)
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO friends (user_id, friend_id, remark, since, version) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, friend_id) DO UPDATE SET "
                    "remark = excluded.remark, since = excluded.since, "
                    "version = excluded.version, deleted_at = NULL, deleted_by = NULL",
                    [
                        (requester, user, request.remark, at(now_ms), version),
                        (user, requester, remark, at(now_ms), version),
                    ],
                )
            return Posted(_friend_view(conn, user, requester), notices)

        return await self._db.write(accept)

    async def reject_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        def reject(conn: Connection) -> Posted[FriendRequest]:
            request = _request_to(conn, request_id, user, side="to_user")
            data = {"request": request.id, "by": user}
            notices = post_notices(
                conn, [NewNotice(request.from_user, "friend.rejected", data)], now_ms=now_ms
            )
            rejected = _set_status(conn, request, "rejected", now_ms, bump_version(conn))
            return Posted(rejected, notices)

        return await self._db.write(reject)

    async def cancel_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        def cancel(conn: Connection) -> Posted[FriendRequest]:
            request = _request_to(conn, request_id, user, side="from_user")
            data = {"request": request.id, "from": user}
            notices = post_notices(
                conn, [NewNotice(request.to_user, "friend.cancelled", data)], now_ms=now_ms
            )
            cancelled = _set_status(conn, request, "cancelled", now_ms, bump_version(conn))
            return Posted(cancelled, notices)

        return await self._db.write(cancel)

    # -- friends -----------------------------------------------------------------------

    async def list_friends(self, user: str) -> list[Friend]:
        def select(conn: Connection) -> list[Friend]:
            rows = conn.execute(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = %s AND f.deleted_at IS NULL "
                'ORDER BY u.username_key COLLATE "C"',
                (user,),
            ).fetchall()
            return [_friend(row) for row in rows]

        return await self._db.read(select)

    async def delete_friend(self, user: str, friend: str, *, now_ms: int) -> Posted[None]:
        def delete(conn: Connection) -> Posted[None]:
            rows = conn.execute(
                "SELECT user_id FROM friends "
                f"WHERE deleted_at IS NULL AND {_PAIR_FRIENDS} FOR UPDATE",
                {"a": user, "b": friend},
            ).fetchall()
            if user not in {row[0] for row in rows}:
                raise NotFound("not a friend of yours")
            cid = direct_cid(user, friend)
            notices = post_notices(
                conn, [NewNotice(friend, "friend.deleted", {"by": user, "cid": cid})], now_ms=now_ms
            )
            version = bump_version(conn)
            conn.execute(
                "UPDATE friends SET deleted_at = %(now)s, deleted_by = %(a)s, version = %(v)s "
                f"WHERE {_PAIR_FRIENDS}",
                {"now": at(now_ms), "a": user, "b": friend, "v": version},
            )
            # Both keep the history; neither can write until they are friends again.
            set_can_send(conn, cid=cid, users=(user, friend), can_send=False, version=version)
            return Posted(None, notices)

        return await self._db.write(delete)

    async def set_remark(self, user: str, friend: str, remark: str, *, now_ms: int) -> Friend:
        def update(conn: Connection) -> Friend:
            if not _is_friend(conn, user, friend):
                raise NotFound("not a friend of yours")
            conn.execute(
                "UPDATE friends SET remark = %s, version = %s "
                "WHERE user_id = %s AND friend_id = %s",
                (remark, bump_version(conn), user, friend),
            )
            return _friend_view(conn, user, friend)

        return await self._db.write(update)

    async def changes(self, user: str, *, since: int) -> ContactChanges:
        def select(conn: Connection) -> ContactChanges:
            row = conn.execute("SELECT value FROM counters WHERE name = 'version'").fetchone()
            assert row is not None
            version = int(row[0])
            # A since from the future (another server's data, a reset) means: everything.
            floor = -1 if since > version else since
            friends = conn.execute(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = %s AND f.version > %s ORDER BY f.version",
                (user, floor),
            ).fetchall()
            requests = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
                "WHERE (to_user = %(user)s OR from_user = %(user)s) AND version > %(floor)s "
                'ORDER BY version, id COLLATE "C"',
                {"user": user, "floor": floor},
            ).fetchall()
            return ContactChanges(
                [_friend(row) for row in friends], [_request(row) for row in requests], version
            )

        return await self._db.read(select)

    # -- blocks ------------------------------------------------------------------------

    async def block(self, user: str, target: str, *, now_ms: int) -> None:
        def insert(conn: Connection) -> None:
            exists = conn.execute("SELECT 1 FROM users WHERE id = %s", (target,)).fetchone()
            if exists is None or target == user:
                raise NotFound("no such user")
            version = bump_version(conn)
            conn.execute(
                "INSERT INTO blocks (user_id, blocked_id, created_at, version) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (user, target, at(now_ms), version),
            )
            # Pending requests either way end silently: nobody is told of a block.
            conn.execute(
                "UPDATE friend_requests SET status = 'cancelled', updated_at = %(now)s, "
                f"version = %(v)s WHERE status = 'pending' AND {_PAIR_REQUESTS}",
                {"now": at(now_ms), "v": version, "a": user, "b": target},
            )
            set_can_send(
                conn,
                cid=direct_cid(user, target),
                users=(user, target),
                can_send=False,
                version=version,
            )

        await self._db.write(insert)

    async def unblock(self, user: str, target: str, *, now_ms: int) -> None:
        def delete(conn: Connection) -> None:
            removed = conn.execute(
                "DELETE FROM blocks WHERE user_id = %s AND blocked_id = %s", (user, target)
            ).rowcount
            if (
                removed
                and not _blocks(conn, target, user)
                and _is_friend(conn, user, target)
                and _is_friend(conn, target, user)
            ):
                set_can_send(
                    conn,
                    cid=direct_cid(user, target),
                    users=(user, target),
                    can_send=True,
                    version=bump_version(conn),
                )

        await self._db.write(delete)

    async def list_blocks(self, user: str) -> list[Blocked]:
        def select(conn: Connection) -> list[Blocked]:
            rows = conn.execute(
                "SELECT u.id, u.username, u.display_name, u.avatar, b.created_at "
                "FROM blocks b JOIN users u ON u.id = b.blocked_id "
                'WHERE b.user_id = %s ORDER BY b.created_at DESC, u.id COLLATE "C"',
                (user,),
            ).fetchall()
            return [
                Blocked(id=i, username=n, display_name=d, avatar=a, since=ms(s))
                for i, n, d, a, s in rows
            ]

        return await self._db.read(select)
