"""The message append in SQLite: one send at a time under the single writer.

SQLite serialises every write transaction, so the batch is checked and
written row by row: dedupe, who may send, group mutes, uploads, revisions,
then one ``UPDATE ... RETURNING`` for the seq and one INSERT. The reads of the
log are portable (``store.sql.messages``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import msgpack

from sandcat.ids import parse_cid
from sandcat.store.conversations import append_effects
from sandcat.store.messages import Appended, NewMessage, Refused, StoredMessage
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sql.messages import (
    COLUMNS,
    WRITTEN,
    SqlMessageStore,
    message_from_row,
    stored_message,
)
from sandcat.store.sql.revisions import WRITE_COLUMNS, apply, forward_values, refusal
from sandcat.store.sqlite.attachments import record_attachments, uploads_ready
from sandcat.store.sqlite.database import Database
from sandcat.store.sqlite.dialect import DIALECT
from sandcat.store.sqlite.groups import send_refusal

_NOT_MEMBER = "not a member of this conversation"


def message_store(db: Database) -> SqlMessageStore:
    """The message store over SQLite: the portable reads and this append."""
    return SqlMessageStore(db, DIALECT, append=append)


def _can_send(tx: Tx, sender: str, cid: str, open_direct: bool, now_ms: int) -> bool:
    conn = tx.conn
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
    open_conversation(tx, cid=cid, kind="direct", members=(sender, peer), now_ms=now_ms)
    return True


def append(
    tx: Tx, batch: Sequence[NewMessage], now_ms: int, open_direct: bool
) -> list[Appended | Refused]:
    """Store ``batch`` one send at a time (see ``sandcat.store.messages``)."""
    conn = tx.conn
    dialect = tx.dialect
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
                f"SELECT {COLUMNS} FROM messages WHERE sender = ? AND cid = ? AND cmid = ?", key
            ).fetchone()
            earlier = None if row is None else message_from_row(dialect, row)
        if earlier is not None:
            outcomes.append(Appended(earlier, duplicate=True, members=()))
            continue
        may = allowed.get((new.sender, new.cid))
        if may is None:
            may = allowed[(new.sender, new.cid)] = _can_send(
                tx, new.sender, new.cid, open_direct, now_ms
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
        if (refused := refusal(tx, new, now_ms)) is not None:
            outcomes.append(refused)
            continue
        if version is None:
            version = tx.bump_version()
        (seq,) = conn.execute(
            "UPDATE conversations SET max_seq = max_seq + 1, version = ? WHERE cid = ? "
            "RETURNING max_seq",
            (version, new.cid),
        ).fetchone()
        stored = stored_message(new, int(seq), now_ms)
        conn.execute(
            f"INSERT INTO messages ({WRITTEN}, {WRITE_COLUMNS}) "
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
        apply(tx, new, stored.seq, now_ms)
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
    _note_appended(
        conn, [o.message for o in outcomes if isinstance(o, Appended) and not o.duplicate]
    )
    return outcomes


def _note_appended(conn: sqlite3.Connection, rows: Iterable[StoredMessage]) -> None:
    """Member state that a batch of new messages changes (in the append's transaction)."""
    effects = append_effects(rows)
    conn.executemany(
        "UPDATE conversation_members SET read_seq = max(read_seq, ?) WHERE user_id = ? AND cid = ?",
        [(seq, user, cid) for (user, cid), seq in effects.read.items()],
    )
    conn.executemany(
        "UPDATE conversation_members SET hidden = 0 WHERE cid = ? AND hidden = 1",
        [(cid,) for cid in {cid for _, cid in effects.read}],
    )
    conn.executemany(
        "UPDATE conversation_members SET mention_seq = max(mention_seq, ?) "
        "WHERE user_id = ? AND cid = ?",
        [(seq, user, cid) for (user, cid), seq in effects.mentioned.items()],
    )
    conn.executemany(
        "UPDATE conversation_members SET mention_seq = max(mention_seq, ?) "
        "WHERE cid = ? AND user_id != ? AND until_seq IS NULL",
        [(seq, cid, sender) for cid, (seq, sender) in effects.everyone.items()],
    )
