"""History in both directions, lookup by mid, and hiding.

See ``sandcat.store.history`` for the contract. Membership and ``min_seq``
come from the same ``bounds`` as PULL, so both answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.errors import BadRequest, Forbidden, NotFound
from sandcat.protocol import parse_cid
from sandcat.store.messages import Page, StoredMessage
from sandcat.store.sql._tx import SqlStore, Tx
from sandcat.store.sql.messages import COLUMNS, bounds, message_from_row, pull
from sandcat.store.sql.revisions import NOT_HIDDEN


class SqlHistoryStore(SqlStore):
    async def history(
        self, user: str, cid: str, *, before: int | None, after: int | None, limit: int
    ) -> Page:
        return await self._read(lambda tx: _history(tx, user, cid, before, after, limit))

    async def message(self, user: str, mid: str) -> StoredMessage:
        return await self._read(lambda tx: _message(tx, user, mid))

    async def roles(self, cid: str, users: Sequence[str]) -> dict[str, str]:
        return await self._read(lambda tx: _roles(tx, cid, users))

    async def hide(self, user: str, cid: str, seqs: Sequence[int], *, now_ms: int) -> None:
        await self._write(lambda tx: _hide(tx, user, cid, seqs, now_ms))


def _history(
    tx: Tx, user: str, cid: str, before: int | None, after: int | None, limit: int
) -> Page:
    if after is not None:
        return pull(tx, user, cid, after, limit)
    min_seq, max_seq, _ = bounds(tx, user, cid)
    rows = tx.all(
        f"SELECT {COLUMNS} FROM messages WHERE cid = ? AND seq < ? AND seq >= ? "
        f"AND {NOT_HIDDEN} ORDER BY seq DESC LIMIT ?",
        cid,
        max_seq + 1 if before is None else min(before, max_seq + 1),
        min_seq,
        user,
        limit + 1,
    )
    return Page(
        messages=tuple(message_from_row(tx.dialect, row) for row in rows[:limit][::-1]),
        more=len(rows) > limit,
        min_seq=min_seq,
        max_seq=max_seq,
    )


def _message(tx: Tx, user: str, mid: str) -> StoredMessage:
    row = tx.one(f"SELECT {COLUMNS} FROM messages WHERE mid = ? AND {NOT_HIDDEN}", mid, user)
    if row is None:
        raise NotFound("no such message")
    message = message_from_row(tx.dialect, row)
    try:
        min_seq, max_seq, _ = bounds(tx, user, message.cid)
    except Forbidden as exc:
        raise NotFound("no such message") from exc
    if not min_seq <= message.seq <= max_seq:
        raise NotFound("no such message")
    return message


def _roles(tx: Tx, cid: str, users: Sequence[str]) -> dict[str, str]:
    group = parse_cid(cid).group
    if group is not None:
        rows = tx.all(
            f"SELECT user_id, role FROM group_members WHERE group_id = ? AND {tx.among('user_id')}",
            group,
            tx.array(users),
        )
    else:
        rows = tx.all(
            "SELECT user_id, 'member' FROM conversation_members "
            f"WHERE cid = ? AND {tx.among('user_id')}",
            cid,
            tx.array(users),
        )
    return {str(user): str(role) for user, role in rows}


def _hide(tx: Tx, user: str, cid: str, seqs: Sequence[int], now_ms: int) -> None:
    _, max_seq, _ = bounds(tx, user, cid)
    if max(seqs) > max_seq:
        raise BadRequest(f"seqs: {max(seqs)} is above the conversation's max_seq {max_seq}")
    hidden_at = tx.time_in(now_ms)
    tx.many(
        "INSERT INTO hidden_messages (user_id, cid, seq, hidden_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [(user, cid, seq, hidden_at) for seq in dict.fromkeys(seqs)],
    )
