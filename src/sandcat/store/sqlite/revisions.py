"""Recall and edit events in SQLite, and the message columns this part adds.

See ``sandcat.store.revisions`` for the rules; here the target is looked up
and revised inside the append's transaction. Also here: the forward columns
of a message row, and the filter that leaves out what a user hid
(``hidden_messages``), used by PULL and HISTORY alike.
"""

from __future__ import annotations

import sqlite3

from sandcat.protocol import Kind
from sandcat.store.messages import NewMessage, Origin, Refused
from sandcat.store.revisions import TOMBSTONE, is_revision, judge
from sandcat.store.sqlite.groups import role_in

#: Columns written with every message, after the foundation's.
WRITE_COLUMNS = "forward_cid, forward_seq, forward_from"
#: Columns read with every message, after the foundation's.
READ_COLUMNS = f"{WRITE_COLUMNS}, edited_at, recalled"
#: True for a row of ``messages`` the user (the one ``?``) did not hide.
NOT_HIDDEN = (
    "NOT EXISTS (SELECT 1 FROM hidden_messages h "
    "WHERE h.user_id = ? AND h.cid = messages.cid AND h.seq = messages.seq)"
)


def forward_values(new: NewMessage) -> tuple[str | None, int | None, str | None]:
    """The ``WRITE_COLUMNS`` values of a new message."""
    origin = new.forward
    if origin is None:
        return None, None, None
    return origin.cid, origin.seq, origin.sender


def revision_fields(row: tuple[object, ...]) -> dict[str, object]:
    """``StoredMessage`` fields from a row's ``READ_COLUMNS`` values."""
    forward_cid, forward_seq, forward_from, edited_at, recalled = row
    return {
        "forward": None
        if forward_cid is None
        else Origin(str(forward_cid), int(forward_seq), str(forward_from)),  # type: ignore[call-overload]
        "edited_at": None if edited_at is None else int(edited_at),  # type: ignore[call-overload]
        "recalled": bool(recalled),
    }


def refusal(conn: sqlite3.Connection, new: NewMessage, now_ms: int) -> Refused | None:
    """Why the recall or edit ``new`` may not be stored; None if it may (or is neither)."""
    if not is_revision(new):
        return None
    row = conn.execute(
        "SELECT m.sender, m.kind, m.created_at, m.recalled FROM messages m "
        "JOIN conversations c ON c.cid = m.cid "
        "WHERE m.cid = ? AND m.seq = ? AND m.seq >= c.min_seq",
        (new.cid, new.target),
    ).fetchone()
    if row is None:
        return Refused("bad_request", "seq: no such message")
    role = None
    if new.kind == Kind.RECALL and new.cid.startswith("g:"):
        role = role_in(conn, new.cid[2:], new.sender)
    return judge(
        new,
        now_ms=now_ms,
        sender=str(row[0]),
        kind=int(row[1]),
        created=int(row[2]),
        recalled=bool(row[3]),
        role=role,
    )


def apply(conn: sqlite3.Connection, new: NewMessage, seq: int, now_ms: int) -> None:
    """After ``new`` was stored at ``seq``: note its files; revise a recall's or edit's target."""
    if new.files:
        conn.executemany(
            "INSERT OR IGNORE INTO message_files (cid, seq, file_id) VALUES (?, ?, ?)",
            [(new.cid, seq, file_id) for file_id in dict.fromkeys(new.files)],
        )
    if not is_revision(new):
        return
    if new.kind == Kind.RECALL:
        _withdraw_files(conn, new.cid, new.target)
        conn.execute(
            "UPDATE messages SET recalled = 1, body = ?, mentions = NULL WHERE cid = ? AND seq = ?",
            (TOMBSTONE, new.cid, new.target),
        )
    else:
        conn.execute(
            "UPDATE messages SET body = ?, edited_at = ? WHERE cid = ? AND seq = ?",
            (new.replacement, now_ms, new.cid, new.target),
        )


def _withdraw_files(conn: sqlite3.Connection, cid: str, seq: int | None) -> None:
    """A recalled message's files stop being readable in ``cid`` (``attachments``),
    unless another message there still refers to them; the uploader keeps them."""
    files = [
        str(file_id)
        for (file_id,) in conn.execute(
            "DELETE FROM message_files WHERE cid = ? AND seq = ? RETURNING file_id", (cid, seq)
        )
    ]
    for file_id in files:
        if (
            conn.execute(
                "SELECT 1 FROM message_files WHERE cid = ? AND file_id = ?", (cid, file_id)
            ).fetchone()
            is None
        ):
            conn.execute("DELETE FROM attachments WHERE file_id = ? AND cid = ?", (file_id, cid))
