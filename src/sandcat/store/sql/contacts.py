"""Friend requests, friendships and blocks, over either engine.

Each transaction takes its change version once, as late as it can (see
``Tx.bump_version``), and writes notices to the other user's inbox before
committing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sandcat.errors import Conflict, NotFound, RateLimited, SandcatError
from sandcat.ids import direct_cid
from sandcat.store.contacts import Blocked, ContactChanges, Friend, FriendRequest
from sandcat.store.inbox import NewNotice, Posted
from sandcat.store.sql._tx import SqlStore, Tx
from sandcat.store.sql.conversations import open_conversation, set_can_send

_REQUEST_COLUMNS = "id, from_user, to_user, message, remark, status, created_at, updated_at"
_FRIEND_COLUMNS = "u.id, u.username, u.display_name, u.avatar, f.remark, f.since, f.deleted_at"
_PENDING = "a friend request to this user is already pending"
#: Requests between a and b, either way (parameters: a, b, b, a).
_PAIR_REQUESTS = "((from_user = ? AND to_user = ?) OR (from_user = ? AND to_user = ?))"
#: Friend rows between a and b, either way (parameters: a, b, b, a).
_PAIR_FRIENDS = "((user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?))"
_CONFLICTS: dict[str, Callable[[], SandcatError]] = {
    "friend_requests(from_user, to_user)": lambda: Conflict(_PENDING, field="to"),
}


def _request(tx: Tx, row: Any) -> FriendRequest:
    id_, from_user, to_user, message, remark, status, created, updated = row
    return FriendRequest(
        id=id_,
        from_user=from_user,
        to_user=to_user,
        message=message,
        remark=remark,
        status=status,
        created_at=tx.time_out(created),
        updated_at=tx.time_out(updated),
    )


def _friend(tx: Tx, row: Any) -> Friend:
    id_, username, display_name, avatar, remark, since, deleted_at = row
    return Friend(
        id=id_,
        username=username,
        display_name=display_name,
        avatar=avatar,
        remark=remark,
        since=tx.time_out(since),
        deleted=deleted_at is not None,
    )


def _request_to(tx: Tx, request_id: str, user: str, *, side: str) -> FriendRequest:
    row = tx.one(
        f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
        f"WHERE id = ? AND {side} = ? AND status = 'pending'" + tx.dialect.for_update,
        request_id,
        user,
    )
    if row is None:
        # The same answer whether the request is someone else's or gone.
        raise NotFound("no such pending friend request")
    return _request(tx, row)


def _set_status(
    tx: Tx, request: FriendRequest, status: str, now_ms: int, version: int
) -> FriendRequest:
    tx.run(
        "UPDATE friend_requests SET status = ?, updated_at = ?, version = ? WHERE id = ?",
        status,
        tx.time_in(now_ms),
        version,
        request.id,
    )
    return replace(request, status=status, updated_at=now_ms)  # type: ignore[arg-type]


def is_friend(tx: Tx, user: str, friend: str) -> bool:
    """``user`` has ``friend`` as a live friend (one direction of the pair)."""
    row = tx.one(
        "SELECT 1 FROM friends WHERE user_id = ? AND friend_id = ? AND deleted_at IS NULL",
        user,
        friend,
    )
    return row is not None


def _blocks(tx: Tx, user: str, target: str) -> bool:
    return (
        tx.one("SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?", user, target)
        is not None
    )


def _friend_view(tx: Tx, user: str, friend: str) -> Friend:
    row = tx.one(
        f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
        "WHERE f.user_id = ? AND f.friend_id = ?",
        user,
        friend,
    )
    return _friend(tx, row)


def _cooldown_left(tx: Tx, request: FriendRequest, cooldown_ms: int) -> int:
    """How long the requester must still wait after a rejection or an unfriending."""
    if cooldown_ms <= 0:
        return 0
    since = tx.time_in(request.created_at - cooldown_ms)
    # One round trip: both times as scalar subqueries, the later one taken here.
    row = tx.one(
        "SELECT (SELECT MAX(updated_at) FROM friend_requests WHERE from_user = ? "
        "AND to_user = ? AND status = 'rejected' AND updated_at > ?), "
        "(SELECT deleted_at FROM friends WHERE user_id = ? AND friend_id = ? "
        "AND deleted_by = ? AND deleted_at > ?)",
        request.from_user,
        request.to_user,
        since,
        request.to_user,
        request.from_user,
        request.to_user,
        since,
    )
    times = [tx.time_out(t) for t in row if t is not None]
    return 0 if not times else max(times) + cooldown_ms - request.created_at


class SqlContactStore(SqlStore):
    """``ContactStore`` over either engine's ``Database``."""

    # -- requests ----------------------------------------------------------------------

    async def create_request(
        self, request: FriendRequest, *, cooldown_ms: int = 0
    ) -> Posted[FriendRequest]:
        sender, target = request.from_user, request.to_user

        def insert(tx: Tx) -> Posted[FriendRequest]:
            row = tx.one(
                "SELECT username, display_name FROM users WHERE id = ? AND NOT disabled", sender
            )
            exists = tx.one("SELECT 1 FROM users WHERE id = ? AND NOT disabled", target)
            # Blocked by the addressee: the same answer as for nobody at all.
            if row is None or exists is None or _blocks(tx, target, sender):
                raise NotFound("no such user", field="to")
            if _blocks(tx, sender, target):
                raise Conflict("you block this user; unblock them first", field="to")
            if is_friend(tx, sender, target):
                raise Conflict("already friends", field="to")
            pending = tx.one(
                "SELECT from_user FROM friend_requests "
                f"WHERE status = 'pending' AND {_PAIR_REQUESTS}",
                sender,
                target,
                target,
                sender,
            )
            if pending is not None:
                reason = (
                    _PENDING
                    if pending[0] == sender
                    else "this user already asked you; accept their request"
                )
                raise Conflict(reason, field="to")
            wait_ms = _cooldown_left(tx, request, cooldown_ms)
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
            notices = tx.post([NewNotice(target, "friend.requested", data)], request.created_at)
            tx.run(
                f"INSERT INTO friend_requests ({_REQUEST_COLUMNS}, version) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                request.id,
                sender,
                target,
                request.message,
                request.remark,
                tx.time_in(request.created_at),
                tx.time_in(request.updated_at),
                tx.bump_version(),
            )
            return Posted(request, notices)

        return await self._write(insert, conflicts=_CONFLICTS)

    async def list_requests(self, user: str) -> list[FriendRequest]:
        def select(tx: Tx) -> list[FriendRequest]:
            rows = tx.all(
                f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
                "WHERE (to_user = ? OR from_user = ?) AND status = 'pending' "
                f"ORDER BY created_at DESC, id{tx.dialect.collate}",
                user,
                user,
            )
            return [_request(tx, row) for row in rows]

        return await self._read(select)

    async def accept_request(
        self, request_id: str, *, user: str, remark: str, now_ms: int
    ) -> Posted[Friend]:
        def accept(tx: Tx) -> Posted[Friend]:
            request = _request_to(tx, request_id, user, side="to_user")
            requester = request.from_user
            cid = direct_cid(requester, user)
            data = {"request": request.id, "friend": user, "cid": cid}
            notices = tx.post([NewNotice(requester, "friend.accepted", data)], now_ms)
            version = open_conversation(
                tx, cid=cid, kind="direct", members=(requester, user), now_ms=now_ms
            )
            _set_status(tx, request, "accepted", now_ms, version)
            since = tx.time_in(now_ms)
            tx.many(
                "INSERT INTO friends (user_id, friend_id, remark, since, version) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, friend_id) DO UPDATE SET "
                "remark = excluded.remark, since = excluded.since, "
                "version = excluded.version, deleted_at = NULL, deleted_by = NULL",
                [
                    (requester, user, request.remark, since, version),
                    (user, requester, remark, since, version),
                ],
            )
            return Posted(_friend_view(tx, user, requester), notices)

        return await self._write(accept)

    async def reject_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        def reject(tx: Tx) -> Posted[FriendRequest]:
            request = _request_to(tx, request_id, user, side="to_user")
            data = {"request": request.id, "by": user}
            notices = tx.post([NewNotice(request.from_user, "friend.rejected", data)], now_ms)
            rejected = _set_status(tx, request, "rejected", now_ms, tx.bump_version())
            return Posted(rejected, notices)

        return await self._write(reject)

    async def cancel_request(
        self, request_id: str, *, user: str, now_ms: int
    ) -> Posted[FriendRequest]:
        def cancel(tx: Tx) -> Posted[FriendRequest]:
            request = _request_to(tx, request_id, user, side="from_user")
            data = {"request": request.id, "from": user}
            notices = tx.post([NewNotice(request.to_user, "friend.cancelled", data)], now_ms)
            cancelled = _set_status(tx, request, "cancelled", now_ms, tx.bump_version())
            return Posted(cancelled, notices)

        return await self._write(cancel)

    # -- friends -----------------------------------------------------------------------

    async def list_friends(self, user: str) -> list[Friend]:
        def select(tx: Tx) -> list[Friend]:
            rows = tx.all(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = ? AND f.deleted_at IS NULL "
                f"ORDER BY u.username_key{tx.dialect.collate}",
                user,
            )
            return [_friend(tx, row) for row in rows]

        return await self._read(select)

    async def delete_friend(self, user: str, friend: str, *, now_ms: int) -> Posted[None]:
        def delete(tx: Tx) -> Posted[None]:
            rows = tx.all(
                f"SELECT user_id FROM friends WHERE deleted_at IS NULL AND {_PAIR_FRIENDS}"
                + tx.dialect.for_update,
                user,
                friend,
                friend,
                user,
            )
            if user not in {row[0] for row in rows}:
                raise NotFound("not a friend of yours")
            cid = direct_cid(user, friend)
            data = {"by": user, "cid": cid}
            notices = tx.post([NewNotice(friend, "friend.deleted", data)], now_ms)
            version = tx.bump_version()
            tx.run(
                f"UPDATE friends SET deleted_at = ?, deleted_by = ?, version = ? "
                f"WHERE {_PAIR_FRIENDS}",
                tx.time_in(now_ms),
                user,
                version,
                user,
                friend,
                friend,
                user,
            )
            # Both keep the history; neither can write until they are friends again.
            set_can_send(tx, cid=cid, users=(user, friend), can_send=False, version=version)
            return Posted(None, notices)

        return await self._write(delete)

    async def set_remark(self, user: str, friend: str, remark: str, *, now_ms: int) -> Friend:
        def update(tx: Tx) -> Friend:
            if not is_friend(tx, user, friend):
                raise NotFound("not a friend of yours")
            tx.run(
                "UPDATE friends SET remark = ?, version = ? WHERE user_id = ? AND friend_id = ?",
                remark,
                tx.bump_version(),
                user,
                friend,
            )
            return _friend_view(tx, user, friend)

        return await self._write(update)

    async def changes(self, user: str, *, since: int) -> ContactChanges:
        def select(tx: Tx) -> ContactChanges:
            (version,) = tx.one("SELECT value FROM counters WHERE name = 'version'")
            version = int(version)
            # A since from the future (another server's data, a reset) means: everything.
            floor = -1 if since > version else since
            friends = tx.all(
                f"SELECT {_FRIEND_COLUMNS} FROM friends f JOIN users u ON u.id = f.friend_id "
                "WHERE f.user_id = ? AND f.version > ? ORDER BY f.version",
                user,
                floor,
            )
            requests = tx.all(
                f"SELECT {_REQUEST_COLUMNS} FROM friend_requests "
                "WHERE (to_user = ? OR from_user = ?) AND version > ? "
                f"ORDER BY version, id{tx.dialect.collate}",
                user,
                user,
                floor,
            )
            return ContactChanges(
                [_friend(tx, row) for row in friends],
                [_request(tx, row) for row in requests],
                version,
            )

        return await self._read(select)

    # -- blocks ------------------------------------------------------------------------

    async def block(self, user: str, target: str, *, now_ms: int) -> None:
        def insert(tx: Tx) -> None:
            exists = tx.one("SELECT 1 FROM users WHERE id = ?", target)
            if exists is None or target == user:
                raise NotFound("no such user")
            version = tx.bump_version()
            now = tx.time_in(now_ms)
            tx.run(
                "INSERT INTO blocks (user_id, blocked_id, created_at, version) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                user,
                target,
                now,
                version,
            )
            # Pending requests either way end silently: nobody is told of a block.
            tx.run(
                "UPDATE friend_requests SET status = 'cancelled', updated_at = ?, version = ? "
                f"WHERE status = 'pending' AND {_PAIR_REQUESTS}",
                now,
                version,
                user,
                target,
                target,
                user,
            )
            set_can_send(
                tx,
                cid=direct_cid(user, target),
                users=(user, target),
                can_send=False,
                version=version,
            )

        await self._write(insert)

    async def unblock(self, user: str, target: str, *, now_ms: int) -> None:
        def delete(tx: Tx) -> None:
            removed = tx.run(
                "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?", user, target
            )
            if (
                removed
                and not _blocks(tx, target, user)
                and is_friend(tx, user, target)
                and is_friend(tx, target, user)
            ):
                set_can_send(
                    tx,
                    cid=direct_cid(user, target),
                    users=(user, target),
                    can_send=True,
                    version=tx.bump_version(),
                )

        await self._write(delete)

    async def list_blocks(self, user: str) -> list[Blocked]:
        def select(tx: Tx) -> list[Blocked]:
            rows = tx.all(
                "SELECT u.id, u.username, u.display_name, u.avatar, b.created_at "
                "FROM blocks b JOIN users u ON u.id = b.blocked_id "
                f"WHERE b.user_id = ? ORDER BY b.created_at DESC, u.id{tx.dialect.collate}",
                user,
            )
            return [
                Blocked(id=i, username=n, display_name=d, avatar=a, since=tx.time_out(s))
                for i, n, d, a, s in rows
            ]

        return await self._read(select)
