"""Conversation rows shared by every SQLite store that opens a conversation.

Friendship acceptance and group creation open conversations inside their own
transactions with ``open_conversation``; the message store reads and advances
them. ``bump_version`` hands out the global change counter behind SYNC's
``version``: SQLite serialises writers, so versions are committed in order and
a client that synced at version v never misses a change with a larger one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Literal


def bump_version(conn: sqlite3.Connection) -> int:
    """Take the next global change version (inside the caller's transaction)."""
    (value,) = conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'version' RETURNING value"
    ).fetchone()
    return int(value)


def open_conversation(
    conn: sqlite3.Connection,
    *,
    cid: str,
    kind: Literal["direct", "group"],
    members: Iterable[str],
    now_ms: int,
    can_send: bool = True,
) -> int:
    """Create the conversation if needed and make ``members`` part of it.

    Existing members get ``can_send`` set again (a re-added friend or member
    may write again); their read state is kept. Returns the version used.
    """
    version = bump_version(conn)
    conn.execute(
        "INSERT INTO conversations (cid, kind, version, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (cid) DO UPDATE SET version = excluded.version",
        (cid, kind, version, now_ms),
    )
    conn.executemany(
        "INSERT INTO conversation_members (user_id, cid, can_send, version) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, cid) DO UPDATE SET can_send = excluded.can_send, "
        "version = excluded.version",
        [(user, cid, int(can_send), version) for user in members],
    )
    return version


def set_can_send(
    conn: sqlite3.Connection, *, cid: str, users: Iterable[str], can_send: bool
) -> None:
    """Allow or stop sending in ``cid`` for ``users`` (friend deleted, member removed)."""
    version = bump_version(conn)
    conn.executemany(
        "UPDATE conversation_members SET can_send = ?, version = ? WHERE user_id = ? AND cid = ?",
        [(int(can_send), version, user, cid) for user in users],
    )
