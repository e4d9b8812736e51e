"""The message append's file steps in PostgreSQL: uploads still ready, attachments recorded."""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.store.postgres.database import Connection, at


def ready_uploads(conn: Connection, file_ids: Sequence[str]) -> set[str]:
    """Inside a message's transaction: which of ``file_ids`` are ready.

    FOR SHARE: an owner's delete or the janitor waits for this transaction,
    so an upload cannot be condemned between this check and the commit.
    """
    rows = conn.execute(
        "SELECT id FROM uploads WHERE id = ANY(%s) AND state = 'ready' FOR SHARE",
        (sorted(set(file_ids)),),
    )
    return {file_id for (file_id,) in rows}


def record_attachments(conn: Connection, sent: Sequence[tuple[str, str, int]], now_ms: int) -> None:
    """Inside the messages' transaction: each ``(file_id, cid, seq)`` was sent."""
    if not sent:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO attachments (file_id, cid, first_seq, last_seq) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (file_id, cid) DO UPDATE "
            "SET last_seq = GREATEST(attachments.last_seq, EXCLUDED.last_seq)",
            [(file_id, cid, seq, seq) for file_id, cid, seq in sent],
        )
    conn.execute(
        "UPDATE uploads SET referenced_at = %s WHERE id = ANY(%s) AND referenced_at IS NULL",
        (at(now_ms), sorted({file_id for file_id, _, _ in sent})),
    )
