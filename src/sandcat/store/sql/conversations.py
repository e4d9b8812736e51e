"""Conversation rows shared by every store that opens a conversation.

Friendship acceptance and group creation open conversations inside their own
transactions with ``open_conversation``; the message store reads and advances
them, and every change is stamped with a SYNC ``version`` (``Tx.bump_version``).

SYNC versions must be handed out in commit order: a client that synced at
version v is later asked only for changes with a version above v, so a change
that commits with a version at or below v after the client read v is missed
for ever. A sequence (``nextval``) does not give that: transaction A takes 7,
B takes 8 and commits, a client syncs and sees 8, then A commits 7 — the
client never sees A's change. So the version is a row in ``counters``, taken
with ``UPDATE ... RETURNING`` inside the writing transaction: the row lock is
held until commit, so the transaction with version v+1 cannot take it before
the one with v has committed or rolled back, and versions become visible in
order (SQLite's single writer gives that anyway). The reader takes the counter
and the rows from one snapshot. The price on PostgreSQL is that
version-taking transactions serialise on that row from the moment they take
it until they commit, which is why writers take it last, just before
committing (the persister takes one per batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sandcat.store.sql._tx import Tx


def open_conversation(
    tx: Tx,
    *,
    cid: str,
    kind: Literal["direct", "group"],
    members: Iterable[str],
    now_ms: int,
    can_send: bool = True,
    version: int | None = None,
) -> int:
    """Create the conversation if needed and make ``members`` part of it.

    Existing members get ``can_send`` set again (a re-added friend or member
    may write again); their read state is kept. Returns the version used
    (``version`` if given, else a fresh one).
    """
    if version is None:
        version = tx.bump_version()
    tx.run(
        "INSERT INTO conversations (cid, kind, version, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (cid) DO UPDATE SET version = excluded.version",
        cid,
        kind,
        version,
        tx.time_in(now_ms),
    )
    tx.many(
        "INSERT INTO conversation_members (user_id, cid, can_send, version) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, cid) DO UPDATE SET can_send = excluded.can_send, "
        "version = excluded.version",
        [(user, cid, can_send, version) for user in members],
    )
    return version


def set_can_send(tx: Tx, *, cid: str, users: Iterable[str], can_send: bool, version: int) -> None:
    """Allow or stop sending in ``cid`` for ``users`` (friend deleted, member removed)."""
    tx.many(
        "UPDATE conversation_members SET can_send = ?, version = ? WHERE user_id = ? AND cid = ?",
        [(can_send, version, user, cid) for user in users],
    )
