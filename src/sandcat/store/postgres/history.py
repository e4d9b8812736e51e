"""History in both directions, lookup by mid, and hiding, in PostgreSQL.

See ``sandcat.store.history`` for the contract. Membership and ``min_seq``
come from the same ``_bounds`` as PULL, so both answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.errors import BadRequest, Forbidden, NotFound
from sandcat.store.messages import Page, StoredMessage
from sandcat.store.postgres.database import Connection, Database, at
from sandcat.store.postgres.messages import _COLUMNS, _bounds, _message
from sandcat.store.postgres.revisions import NOT_HIDDEN


class PostgresHistoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def history(
        self, user: str, cid: str, *, before: int | None, after: int | None, limit: int
    ) -> Page:
        return await self._db.read(lambda conn: _history(conn, user, cid, before, after, limit))

    async def message(self, user: str, mid: str) -> StoredMessage:
        return await self._db.read(lambda conn: _lookup(conn, user, mid))

    async def roles(self, cid: str, users: Sequence[str]) -> dict[str, str]:
        return await self._db.read(lambda conn: _roles(conn, cid, users))

    async def hide(self, user: str, cid: str, seqs: Sequence[int], *, now_ms: int) -> None:
        await self._db.write(lambda conn: _hide(conn, user, cid, seqs, now_ms))


def _history(
    conn: Connection, user: str, cid: str, before: int | None, after: int | None, limit: int
) -> Page:
    min_seq, max_seq, _ = _bounds(conn, user, cid)
    if after is not None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE cid = %s AND seq > %s AND seq <= %s "
            f"AND {NOT_HIDDEN} ORDER BY seq LIMIT %s",
            (cid, max(after, min_seq - 1), max_seq, user, limit + 1),
        ).fetchall()
        found = rows[:limit]
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE cid = %s AND seq < %s AND seq >= %s "
            f"AND {NOT_HIDDEN} ORDER BY seq DESC LIMIT %s",
            (
                cid,
                max_seq + 1 if before is None else min(before, max_seq + 1),
                min_seq,
                user,
                limit + 1,
            ),
        ).fetchall()
        found = rows[:limit][::-1]
    return Page(
        messages=tuple(_message(row) for row in found),
        more=len(rows) > limit,
        min_seq=min_seq,
        max_seq=max_seq,
    )


def _lookup(conn: Connection, user: str, mid: str) -> StoredMessage:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE mid = %s AND {NOT_HIDDEN}", (mid, user)
    ).fetchone()
    if row is None:
        raise NotFound("no such message")
    message = _message(row)
    try:
        min_seq, max_seq, _ = _bounds(conn, user, message.cid)
    except Forbidden as exc:
        raise NotFound("no such message") from exc
    if not min_seq <= message.seq <= max_seq:
        raise NotFound("no such message")
    return message


def _roles(conn: Connection, cid: str, users: Sequence[str]) -> dict[str, str]:
    if cid.startswith("g:"):
        rows = conn.execute(
            "SELECT user_id, role FROM group_members WHERE group_id = %s AND user_id = ANY(%s)",
            (cid[2:], list(users)),
        )
    else:
        rows = conn.execute(
            "SELECT user_id, 'member' FROM conversation_members "
            "WHERE cid = %s AND user_id = ANY(%s)",
            (cid, list(users)),
        )
    return {str(user): str(role) for user, role in rows}


def _hide(conn: Connection, user: str, cid: str, seqs: Sequence[int], now_ms: int) -> None:
    _, max_seq, _ = _bounds(conn, user, cid)
    if max(seqs) > max_seq:
        raise BadRequest(f"seqs: {max(seqs)} is above the conversation's max_seq {max_seq}")
    unique = list(dict.fromkeys(seqs))
    conn.execute(
        "INSERT INTO hidden_messages (user_id, cid, seq, hidden_at) "
        "SELECT %s, %s, s, %s FROM unnest(%s::bigint[]) AS s ON CONFLICT DO NOTHING",
        (user, cid, at(now_ms), unique),
    )
