"""Conversation rows shared by every PostgreSQL store that opens a conversation.

SYNC versions must be handed out in commit order: a client that synced at
version v is later asked only for changes with a version above v, so a change
that commits with a version at or below v after the client read v is missed
for ever. A sequence (``nextval``) does not give that: transaction A takes 7,
B takes 8 and commits, a client syncs and sees 8, then A commits 7 — the
client never sees A's change. So the version is a row in ``counters``, taken
with ``UPDATE ... RETURNING`` inside the writing transaction: the row lock is
held until commit, so the transaction with version v+1 cannot take it before
the one with v has committed or rolled back, and versions become visible in
order. The reader takes the counter and the rows from one REPEATABLE READ
snapshot. The price is that version-taking transactions serialise on that row
from the moment they take it until they commit, which is why writers take it
last, just before committing (the persister takes one per batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sandcat.store.postgres.database import Connection, at


def bump_version(conn: Connection) -> int:
    """Take the next change version (holds the counter's row lock until commit)."""
    row = conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'version' RETURNING value"
    ).fetchone()
    assert row is not None
    return int(row[0])


def lock_conversations(conn: Connection, cids: Iterable[str]) -> set[str]:
    """Row-lock the existing conversations among ``cids`` (in cid order: no deadlock).

    Returns the cids that exist.
    """
    rows = conn.execute(
        "SELECT cid FROM conversations WHERE cid = ANY(%s) ORDER BY cid FOR UPDATE",
        (sorted(set(cids)),),
    ).fetchall()
    return {cid for (cid,) in rows}


def open_conversation(
    conn: Connection,
    *,
    cid: str,
    kind: Literal["direct", "group"],
    members: Iterable[str],
    now_ms: int,
    can_send: bool = True,
    version: int | None = None,
) -> int:
    """Create the conversation if needed and make ``members`` part of it.

    Existing members get ``can_send`` set again; their read state is kept.
    Returns the version used (``version`` if given, else a fresh one).
    """
    if version is None:
        version = bump_version(conn)
    conn.execute(
        "INSERT INTO conversations (cid, kind, version, created_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (cid) DO UPDATE SET version = excluded.version",
        (cid, kind, version, at(now_ms)),
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO conversation_members (user_id, cid, can_send, version) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, cid) DO UPDATE SET "
            "can_send = excluded.can_send, version = excluded.version",
            [(user, cid, can_send, version) for user in members],
        )
    return version


def set_can_send(
    conn: Connection, *, cid: str, users: Iterable[str], can_send: bool, version: int
) -> None:
    """Allow or stop sending in ``cid`` for ``users`` (friend deleted, blocked)."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "UPDATE conversation_members SET can_send = %s, version = %s "
            "WHERE user_id = %s AND cid = %s",
            [(can_send, version, user, cid) for user in users],
        )
