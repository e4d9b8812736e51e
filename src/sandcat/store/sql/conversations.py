"""Conversation rows opened and closed inside other stores' transactions, over either engine.

Friendship acceptance, blocks and group creation open conversations or stop
members from sending with these, inside their own transactions. The message
append keeps its engine-specific copies (``store.sqlite.conversations``,
``store.postgres.conversations``): it is the hot path.
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

    Existing members get ``can_send`` set again (a re-added friend or member may
    write again); their read state is kept. Returns the version used
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
    """Allow or stop sending in ``cid`` for ``users`` (friend deleted, blocked, unblocked)."""
    tx.many(
        "UPDATE conversation_members SET can_send = ?, version = ? WHERE user_id = ? AND cid = ?",
        [(can_send, version, user, cid) for user in users],
    )
