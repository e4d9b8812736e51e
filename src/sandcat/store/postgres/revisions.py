"""Recall and edit events in PostgreSQL, and the message columns this part adds.

See ``sandcat.store.revisions`` for the rules. The append has row-locked the
batch's conversations, so no other persister revises the same target at the
same time; within one batch, ``pending`` carries the recalls already accepted
(the batch's decisions are taken before any row is written). Also here: the
forward columns of a message row and the filter that leaves out what a user
hid (``hidden_messages``), used by PULL and HISTORY alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandcat.protocol import Kind
from sandcat.store.messages import NewMessage, Origin, Refused, StoredMessage
from sandcat.store.postgres.database import Connection, at, ms
from sandcat.store.postgres.groups import role_in
from sandcat.store.revisions import TOMBSTONE, is_revision, judge

#: Columns written with every message, after the foundation's.
WRITE_COLUMNS = "forward_cid, forward_seq, forward_from"
#: Columns read with every message, after the foundation's.
READ_COLUMNS = f"{WRITE_COLUMNS}, edited_at, recalled"
#: True for a row of ``messages`` the user (the one ``%s``) did not hide.
NOT_HIDDEN = (
    "NOT EXISTS (SELECT 1 FROM hidden_messages h "
    "WHERE h.user_id = %s AND h.cid = messages.cid AND h.seq = messages.seq)"
)


def forward_values(message: StoredMessage) -> tuple[str | None, int | None, str | None]:
    """The ``WRITE_COLUMNS`` values of a message."""
    origin = message.forward
    if origin is None:
        return None, None, None
    return origin.cid, origin.seq, origin.sender


def revision_fields(row: Sequence[Any]) -> dict[str, Any]:
    """``StoredMessage`` fields from a row's ``READ_COLUMNS`` values."""
    forward_cid, forward_seq, forward_from, edited_at, recalled = row
    return {
        "forward": None if forward_cid is None else Origin(forward_cid, forward_seq, forward_from),
        "edited_at": None if edited_at is None else ms(edited_at),
        "recalled": bool(recalled),
    }


def refusal(
    conn: Connection, new: NewMessage, now_ms: int, pending: set[tuple[str, int]]
) -> Refused | None:
    """Why the recall or edit ``new`` may not be stored; None if it may (or is neither).

    ``pending`` holds the ``(cid, seq)`` recalled earlier in the same batch;
    an accepted recall is added to it.
    """
    if not is_revision(new):
        return None
    assert new.target is not None
    row = conn.execute(
        "SELECT m.sender, m.kind, m.created_at, m.recalled FROM messages m "
        "JOIN conversations c ON c.cid = m.cid "
        "WHERE m.cid = %s AND m.seq = %s AND m.seq >= c.min_seq",
        (new.cid, new.target),
    ).fetchone()
    if row is None:
        return Refused("bad_request", "seq: no such message")
    role = None
    if new.kind == Kind.RECALL and new.cid.startswith("g:"):
        role = role_in(conn, new.cid[2:], new.sender)
    refused = judge(
        new,
        now_ms=now_ms,
        sender=row[0],
        kind=row[1],
        created=ms(row[2]),
        recalled=bool(row[3]) or (new.cid, new.target) in pending,
        role=role,
    )
    if refused is None and new.kind == Kind.RECALL:
        pending.add((new.cid, new.target))
    return refused


def apply(conn: Connection, new: NewMessage, seq: int, now_ms: int) -> None:
    """After ``new`` was stored at ``seq``: note its files; revise a recall's or edit's target."""
    if new.files:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO message_files (cid, seq, file_id) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [(new.cid, seq, file_id) for file_id in dict.fromkeys(new.files)],
            )
    if not is_revision(new):
        return
    if new.kind == Kind.RECALL:
        _withdraw_files(conn, new.cid, new.target)
        conn.execute(
            "UPDATE messages SET recalled = true, body = %s, mentions = NULL "
            "WHERE cid = %s AND seq = %s",
            (TOMBSTONE, new.cid, new.target),
        )
    else:
        conn.execute(
            "UPDATE messages SET body = %s, edited_at = %s WHERE cid = %s AND seq = %s",
            (new.replacement, at(now_ms), new.cid, new.target),
        )


def _withdraw_files(conn: Connection, cid: str, seq: int | None) -> None:
    """A recalled message's files stop being readable in ``cid`` (``attachments``),
    unless another message there still refers to them; the uploader keeps them."""
    conn.execute(
        "WITH gone AS (DELETE FROM message_files WHERE cid = %(cid)s AND seq = %(seq)s "
        "RETURNING file_id) "
        "DELETE FROM attachments a USING gone WHERE a.cid = %(cid)s AND a.file_id = gone.file_id "
        "AND NOT EXISTS (SELECT 1 FROM message_files f WHERE f.cid = %(cid)s "
        "AND f.file_id = gone.file_id AND f.seq <> %(seq)s)",
        {"cid": cid, "seq": seq},
    )
