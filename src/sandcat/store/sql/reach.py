"""``ReachStore`` over SQLite or PostgreSQL (see ``sandcat.store.reach``)."""

from __future__ import annotations

from sandcat.store.sql._tx import SqlStore, Tx

_WRITERS = "SELECT user_id FROM conversation_members WHERE cid = ? AND can_send"
_FRIENDS = (
    "SELECT f.friend_id FROM friends f WHERE f.user_id = ? AND f.deleted_at IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.user_id = f.user_id "
    "AND b.blocked_id = f.friend_id) OR (b.user_id = f.friend_id AND b.blocked_id = f.user_id))"
)
_OPENABLE = (
    "SELECT 1 FROM users u WHERE u.id = ? AND NOT u.disabled AND NOT EXISTS ("
    "SELECT 1 FROM blocks b WHERE (b.user_id = ? AND b.blocked_id = u.id)"
    " OR (b.user_id = u.id AND b.blocked_id = ?))"
)


class SqlReachStore(SqlStore):
    async def writers(self, cid: str) -> frozenset[str]:
        def select(tx: Tx) -> frozenset[str]:
            return frozenset(str(user) for (user,) in tx.all(_WRITERS, cid))

        return await self._read(select)

    async def friends(self, user: str) -> list[str]:
        def select(tx: Tx) -> list[str]:
            return [str(friend) for (friend,) in tx.all(_FRIENDS, user)]

        return await self._read(select)

    async def may_open_direct(self, user: str, peer: str) -> bool:
        return await self._read(lambda tx: tx.one(_OPENABLE, peer, user, user) is not None)
