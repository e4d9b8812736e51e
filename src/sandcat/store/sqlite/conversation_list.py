"""Conversations as one member sees them, in SQLite (see ``sandcat.store.conversations``).

Besides the store, three hooks called by the message store:

- ``conversation_states`` builds SYNC's list (unread, mention, cleared history);
- ``note_appended`` runs once per appended batch, in its transaction: each
  sender has read up to their own message, mentioned members get their
  mention seq, and members who hid the conversation see it again;
- ``receipt_observers`` says who is told of a read (the direct peer, when
  both have read receipts on).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable

from sandcat.errors import Forbidden
from sandcat.ids import parse_cid
from sandcat.store.conversations import (
    Readers,
    Settings,
    SettingsChange,
    SettingsUpdate,
    append_effects,
    apply_change,
    cut_page,
    split_readers,
    state_from_row,
)
from sandcat.store.messages import ConversationState, StoredMessage
from sandcat.store.sqlite.conversations import bump_version
from sandcat.store.sqlite.database import Database

_NOT_MEMBER = "not a member of this conversation"


class SqliteConversationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def update_settings(
        self, user: str, cid: str, change: SettingsChange, *, now_ms: int
    ) -> SettingsUpdate:
        return await self._db.write(lambda conn: _update_settings(conn, user, cid, change))

    async def readers(
        self, user: str, cid: str, seq: int, *, after: str | None, limit: int
    ) -> Readers:
        return await self._db.read(lambda conn: _readers(conn, user, cid, seq, after, limit))


def _update_settings(
    conn: sqlite3.Connection, user: str, cid: str, change: SettingsChange
) -> SettingsUpdate:
    row = conn.execute(
        "SELECT m.pinned, m.muted, m.hidden, m.cleared_seq, coalesce(m.until_seq, c.max_seq) "
        "FROM conversation_members m JOIN conversations c ON c.cid = m.cid "
        "WHERE m.user_id = ? AND m.cid = ?",
        (user, cid),
    ).fetchone()
    if row is None:
        raise Forbidden(_NOT_MEMBER)
    pinned, muted, hidden, cleared_seq, max_seq = row
    before = Settings(cid, bool(pinned), bool(muted), bool(hidden), int(cleared_seq))
    after = apply_change(before, change, int(max_seq))
    if after == before:
        return SettingsUpdate(before, changed=False)
    conn.execute(
        "UPDATE conversation_members SET pinned = ?, muted = ?, hidden = ?, cleared_seq = ?, "
        "version = ? WHERE user_id = ? AND cid = ?",
        (
            int(after.pinned),
            int(after.muted),
            int(after.hidden),
            after.cleared_seq,
            bump_version(conn),
            user,
            cid,
        ),
    )
    return SettingsUpdate(after, changed=True)


def _readers(
    conn: sqlite3.Connection, user: str, cid: str, seq: int, after: str | None, limit: int
) -> Readers:
    member = conn.execute(
        "SELECT 1 FROM conversation_members WHERE user_id = ? AND cid = ? AND until_seq IS NULL",
        (user, cid),
    ).fetchone()
    if member is None:
        raise Forbidden(_NOT_MEMBER)
    rows = conn.execute(
        "SELECT user_id, read_seq >= ? FROM conversation_members "
        "WHERE cid = ? AND user_id > ? AND until_seq IS NULL ORDER BY user_id LIMIT ?",
        (seq, cid, after or "", limit + 1),
    ).fetchall()
    return split_readers(rows, limit)


_RECEIPTS = "me.read_receipts = 1 AND pu.read_receipts = 1"
# A member's conversations with the direct peer's row and both users' switches.
_FROM = (
    "FROM conversation_members m JOIN conversations c ON c.cid = m.cid "
    "JOIN users me ON me.id = m.user_id "
    "LEFT JOIN conversation_members p "
    "ON c.kind = 'direct' AND p.cid = c.cid AND p.user_id != m.user_id "
    "LEFT JOIN users pu ON pu.id = p.user_id "
)
# Changed after ?2: a message, my row, or (receipts on) the peer's read.
_CHANGED_AFTER = (
    "WHERE m.user_id = ?1 AND (c.version > ?2 OR m.version > ?2 "
    f"OR (p.version > ?2 AND {_RECEIPTS}))"
)
_CHANGE = f"max(c.version, m.version, CASE WHEN {_RECEIPTS} THEN p.version ELSE 0 END)"


def conversation_states(
    conn: sqlite3.Connection,
    user: str,
    since: int | None,
    *,
    limit: int | None = None,
    last_columns: str,
    message: Callable[[tuple[object, ...]], StoredMessage],
) -> tuple[list[ConversationState], int]:
    """The user's conversations changed after ``since`` (all if None), and the version.

    With ``limit``, a page of the oldest changes (see ``cut_page``) and its
    version. ``last_columns`` selects the latest message's columns from ``l``
    in the order ``message`` reads them.
    """
    (version,) = conn.execute("SELECT value FROM counters WHERE name = 'version'").fetchone()
    # A since from the future (a restored database) means: everything.
    floor = -1 if since is None or since > version else since
    only = ""
    params: tuple[object, ...] = (user, floor)
    if limit is not None:
        changes = conn.execute(f"SELECT c.cid, {_CHANGE} {_FROM}{_CHANGED_AFTER}", params)
        page = cut_page([(str(cid), int(change)) for cid, change in changes], limit)
        if page is not None:
            cids, version = page
            only = " AND c.cid IN (SELECT value FROM json_each(?3))"
            params = (user, floor, json.dumps(cids))
    rows = conn.execute(
        # A group member's window: from its join (from_seq) to its leaving (until_seq).
        "SELECT c.cid, c.kind, coalesce(m.until_seq, c.max_seq), max(c.min_seq, m.from_seq), "
        "m.read_seq, m.muted, m.pinned, m.hidden, m.cleared_seq, m.mention_seq, "
        # The direct peer's read seq only when both allow receipts.
        f"CASE WHEN {_RECEIPTS} THEN p.read_seq END, {last_columns} {_FROM}"
        "LEFT JOIN messages l ON l.cid = c.cid AND l.seq = coalesce(m.until_seq, c.max_seq) "
        "AND l.seq > m.cleared_seq "
        f"{_CHANGED_AFTER}{only} ORDER BY c.version DESC",
        params,
    ).fetchall()
    return [state_from_row(row, message) for row in rows], int(version)


def note_appended(conn: sqlite3.Connection, rows: Iterable[StoredMessage]) -> None:
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


def receipt_observers(conn: sqlite3.Connection, user: str, cid: str) -> tuple[str, ...]:
    """Who else learns that ``user`` read ``cid``: the direct peer, if both have
    read receipts on (reciprocal); nobody in groups (they ask with READERS)."""
    peer = parse_cid(cid).peer_of(user)
    if peer is None:
        return ()
    (both,) = conn.execute(
        "SELECT COUNT(*) FROM users WHERE id IN (?, ?) AND read_receipts = 1", (user, peer)
    ).fetchone()
    return (peer,) if both == 2 else ()
