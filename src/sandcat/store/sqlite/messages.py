"""The message log in SQLite (see ``sandcat.store.messages`` for the contract)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgpack

from sandcat.errors import Forbidden
from sandcat.ids import new_id, parse_cid
from sandcat.store.messages import (
    Appended,
    ConversationState,
    NewMessage,
    Page,
    ReadMark,
    Refused,
    StoredMessage,
)
from sandcat.store.sqlite.attachments import record_attachments, uploads_ready
from sandcat.store.sqlite.conversation_list import (
    conversation_states,
    note_appended,
    receipt_observers,
)
from sandcat.store.sqlite.conversations import bump_version, open_conversation
from sandcat.store.sqlite.database import Database
from sandcat.store.sqlite.groups import send_refusal
from sandcat.store.sqlite.revisions import (
    NOT_HIDDEN,
    READ_COLUMNS,
    WRITE_COLUMNS,
    apply,
    forward_values,
    refusal,
    revision_fields,
)

_WRITTEN = "cid, seq, mid, sender, device, cmid, kind, body, created_at, reply_to, mentions"
_COLUMNS = f"{_WRITTEN}, {READ_COLUMNS}"
_LAST_COLUMNS = ", ".join(f"l.{name.strip()}" for name in _COLUMNS.split(","))
_NOT_MEMBER = "not a member of this conversation"


def _row_to_message(row: tuple[object, ...]) -> StoredMessage:
    cid, seq, mid, sender, device, cmid, kind, body, ts, reply_to, mentions = row[:11]
    return StoredMessage(
        cid=str(cid),
        seq=int(seq),  # type: ignore[call-overload]
        mid=str(mid),
        sender=str(sender),
        device=str(device),
        cmid=str(cmid),
        kind=int(kind),  # type: ignore[call-overload]
        body=bytes(body),  # type: ignore[call-overload]
        ts=int(ts),  # type: ignore[call-overload]
        reply_to=None if reply_to is None else int(reply_to),  # type: ignore[call-overload]
        mentions=None if mentions is None else tuple(msgpack.unpackb(mentions)),
        **revision_fields(row[11:]),  # type: ignore[arg-type]
    )


class SqliteMessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self, batch: Sequence[NewMessage], *, now_ms: int, open_direct: bool
    ) -> list[Appended | Refused]:
        return await self._db.write(lambda conn: _append(conn, batch, now_ms, open_direct))

    async def pull(self, user: str, cid: str, *, after: int, limit: int) -> Page:
        return await self._db.read(lambda conn: _pull(conn, user, cid, after, limit))

    async def conversations(
        self, user: str, *, since: int | None, limit: int | None = None
    ) -> tuple[list[ConversationState], int]:
        return await self._db.read(lambda conn: _conversations(conn, user, since, limit))

    async def mark_read(self, user: str, cid: str, seq: int, *, now_ms: int) -> ReadMark:
        return await self._db.write(lambda conn: _mark_read(conn, user, cid, seq))


def _can_send(
    conn: sqlite3.Connection, sender: str, cid: str, open_direct: bool, now_ms: int
) -> bool:
    row = conn.execute(
        "SELECT can_send FROM conversation_members WHERE user_id = ? AND cid = ?", (sender, cid)
    ).fetchone()
    if row is not None:
        return bool(row[0])
    if not open_direct or not cid.startswith("d:"):
        return False
    parsed = parse_cid(cid)
    peer = parsed.peer_of(sender)
    if peer is None:
        return False
    exists = conn.execute("SELECT 1 FROM users WHERE id = ? AND disabled = 0", (peer,)).fetchone()
    blocked = conn.execute(
        "SELECT 1 FROM blocks "
        "WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?)",
        (sender, peer, peer, sender),
    ).fetchone()
    if exists is None or blocked is not None:
        return False
    open_conversation(conn, cid=cid, kind="direct", members=(sender, peer), now_ms=now_ms)
    return True


def _append(
    conn: sqlite3.Connection, batch: Sequence[NewMessage], now_ms: int, open_direct: bool
) -> list[Appended | Refused]:
    outcomes: list[Appended | Refused] = []
    in_batch: dict[tuple[str, str, str], StoredMessage] = {}
    allowed: dict[tuple[str, str], bool] = {}
    members: dict[str, tuple[str, ...]] = {}
    version: int | None = None
    for new in batch:
        key = (new.sender, new.cid, new.cmid)
        earlier = in_batch.get(key)
        if earlier is None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE sender = ? AND cid = ? AND cmid = ?", key
            ).fetchone()
            earlier = None if row is None else _row_to_message(row)
        if earlier is not None:
            outcomes.append(Appended(earlier, duplicate=True, members=()))
            continue
        may = allowed.get((new.sender, new.cid))
        if may is None:
            may = allowed[(new.sender, new.cid)] = _can_send(
                conn, new.sender, new.cid, open_direct, now_ms
            )
        if not may:
            outcomes.append(Refused("forbidden", _NOT_MEMBER))
            continue
        muted = send_refusal(conn, new.sender, new.cid, now_ms)  # group mutes (store.groups)
        if muted is not None:
            outcomes.append(Refused("forbidden", muted))
            continue
        if new.files and not uploads_ready(conn, new.files):
            outcomes.append(Refused("bad_request", "body.file: no such upload"))
            continue
        if (refused := refusal(conn, new, now_ms)) is not None:
            outcomes.append(refused)
            continue
        if version is None:
            version = bump_version(conn)
        (seq,) = conn.execute(
            "UPDATE conversations SET max_seq = max_seq + 1, version = ? WHERE cid = ? "
            "RETURNING max_seq",
            (version, new.cid),
        ).fetchone()
        stored = StoredMessage(
            cid=new.cid,
            seq=int(seq),
            mid=new_id(),
            sender=new.sender,
            device=new.device,
            cmid=new.cmid,
            kind=new.kind,
            body=new.body,
            ts=now_ms,
            reply_to=new.reply_to,
            mentions=new.mentions,
            forward=new.forward,
        )
        conn.execute(
            f"INSERT INTO messages ({_WRITTEN}, {WRITE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stored.cid,
                stored.seq,
                stored.mid,
                stored.sender,
                stored.device,
                stored.cmid,
                stored.kind,
                stored.body,
                stored.ts,
                stored.reply_to,
                None if stored.mentions is None else msgpack.packb(list(stored.mentions)),
                *forward_values(new),
            ),
        )
        apply(conn, new, stored.seq, now_ms)
        if new.files:
            record_attachments(conn, new.files, cid=new.cid, seq=stored.seq, now_ms=now_ms)
        in_batch[key] = stored
        if new.cid not in members:
            members[new.cid] = tuple(
                user
                for (user,) in conn.execute(
                    "SELECT user_id FROM conversation_members WHERE cid = ? AND until_seq IS NULL",
                    (new.cid,),
                )
            )
        outcomes.append(Appended(stored, duplicate=False, members=members[new.cid]))
    note_appended(
        conn, [o.message for o in outcomes if isinstance(o, Appended) and not o.duplicate]
    )
    return outcomes


def _bounds(conn: sqlite3.Connection, user: str, cid: str) -> tuple[int, int, int]:
    """The user's readable ``(min_seq, max_seq)`` and read seq; ``Forbidden`` if no member.

    A group member reads only its window: from its join (``from_seq``) unless
    the history is visible, up to its removal or leaving (``until_seq``).
    """
    row = conn.execute(
        # A member never sees seqs up to their cleared seq again (CONV_SET clear).
        "SELECT max(c.min_seq, m.cleared_seq + 1), c.max_seq, m.read_seq, m.from_seq, "
        "m.until_seq FROM conversation_members m "
        "JOIN conversations c ON c.cid = m.cid WHERE m.user_id = ? AND m.cid = ?",
        (user, cid),
    ).fetchone()
    if row is None:
        raise Forbidden(_NOT_MEMBER)
    max_seq = int(row[1]) if row[4] is None else min(int(row[1]), int(row[4]))
    return max(int(row[0]), int(row[3])), max_seq, int(row[2])


def _pull(conn: sqlite3.Connection, user: str, cid: str, after: int, limit: int) -> Page:
    min_seq, max_seq, _ = _bounds(conn, user, cid)
    start = max(after, min_seq - 1)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE cid = ? AND seq > ? AND seq <= ? "
        f"AND {NOT_HIDDEN} ORDER BY seq LIMIT ?",
        (cid, start, max_seq, user, limit + 1),
    ).fetchall()
    return Page(
        messages=tuple(_row_to_message(row) for row in rows[:limit]),
        more=len(rows) > limit,
        min_seq=min_seq,
        max_seq=max_seq,
    )


def _conversations(
    conn: sqlite3.Connection, user: str, since: int | None, limit: int | None
) -> tuple[list[ConversationState], int]:
    return conversation_states(
        conn, user, since, limit=limit, last_columns=_LAST_COLUMNS, message=_row_to_message
    )


def _mark_read(conn: sqlite3.Connection, user: str, cid: str, seq: int) -> ReadMark:
    _, max_seq, read_seq = _bounds(conn, user, cid)
    target = min(seq, max_seq)
    if target <= read_seq:
        return ReadMark(seq=read_seq, advanced=False, observers=())
    conn.execute(
        "UPDATE conversation_members SET read_seq = ?, version = ? WHERE user_id = ? AND cid = ?",
        (target, bump_version(conn), user, cid),
    )
    return ReadMark(seq=target, advanced=True, observers=receipt_observers(conn, user, cid))
