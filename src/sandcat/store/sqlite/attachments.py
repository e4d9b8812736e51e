"""The message append's file steps in SQLite: uploads still ready, attachments recorded."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def uploads_ready(conn: sqlite3.Connection, file_ids: Sequence[str]) -> bool:
    """Inside a message's transaction: are all of ``file_ids`` still ready?

    The SEND was checked before it was queued; this catches an upload deleted
    by its owner or the janitor between that check and the commit.
    """
    for file_id in file_ids:
        row = conn.execute("SELECT state FROM uploads WHERE id = ?", (file_id,)).fetchone()
        if row is None or row[0] != "ready":
            return False
    return True


def record_attachments(
    conn: sqlite3.Connection, file_ids: Sequence[str], *, cid: str, seq: int, now_ms: int
) -> None:
    """Inside the message's transaction: ``file_ids`` were sent in ``cid`` at ``seq``."""
    for file_id in file_ids:
        conn.execute(
            "INSERT INTO attachments (file_id, cid, first_seq, last_seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (file_id, cid) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
            (file_id, cid, seq, seq),
        )
        conn.execute(
            "UPDATE uploads SET referenced_at = ? WHERE id = ? AND referenced_at IS NULL",
            (now_ms, file_id),
        )
