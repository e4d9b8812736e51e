"""Conversations as one member sees them (see ``sandcat.store.conversations``).

Besides the store, two hooks called by the message store:

- ``conversation_states`` builds SYNC's list (unread, mention, cleared history);
- ``receipt_observers`` says who is told of a read (the direct peer, when
  both have read receipts on).

Lock order on PostgreSQL: a member row, then the version counter — the order
the append takes too (conversation rows, member rows, counter), so READ,
CONV_SET and the persister never deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sandcat.errors import Forbidden
from sandcat.ids import parse_cid
from sandcat.store.conversations import (
    Readers,
    Settings,
    SettingsChange,
    SettingsUpdate,
    apply_change,
    cut_page,
    split_readers,
    state_from_row,
)
from sandcat.store.messages import ConversationState, StoredMessage
from sandcat.store.sql._tx import SqlStore, Tx

NOT_MEMBER = "not a member of this conversation"


class SqlConversationStore(SqlStore):
    async def update_settings(
        self, user: str, cid: str, change: SettingsChange, *, now_ms: int
    ) -> SettingsUpdate:
        return await self._write(lambda tx: _update_settings(tx, user, cid, change))

    async def readers(
        self, user: str, cid: str, seq: int, *, after: str | None, limit: int
    ) -> Readers:
        return await self._read(lambda tx: _readers(tx, user, cid, seq, after, limit))


def _update_settings(tx: Tx, user: str, cid: str, change: SettingsChange) -> SettingsUpdate:
    row = tx.one(
        "SELECT m.pinned, m.muted, m.hidden, m.cleared_seq, coalesce(m.until_seq, c.max_seq) "
        "FROM conversation_members m JOIN conversations c ON c.cid = m.cid "
        f"WHERE m.user_id = ? AND m.cid = ?{tx.dialect.for_update_of('m')}",
        user,
        cid,
    )
    if row is None:
        raise Forbidden(NOT_MEMBER)
    pinned, muted, hidden, cleared_seq, max_seq = row
    before = Settings(cid, bool(pinned), bool(muted), bool(hidden), int(cleared_seq))
    after = apply_change(before, change, int(max_seq))
    if after == before:
        return SettingsUpdate(before, changed=False)
    tx.run(
        "UPDATE conversation_members SET pinned = ?, muted = ?, hidden = ?, cleared_seq = ?, "
        "version = ? WHERE user_id = ? AND cid = ?",
        after.pinned,
        after.muted,
        after.hidden,
        after.cleared_seq,
        tx.bump_version(),
        user,
        cid,
    )
    return SettingsUpdate(after, changed=True)


def _readers(tx: Tx, user: str, cid: str, seq: int, after: str | None, limit: int) -> Readers:
    member = tx.one(
        "SELECT 1 FROM conversation_members WHERE user_id = ? AND cid = ? AND until_seq IS NULL",
        user,
        cid,
    )
    if member is None:
        raise Forbidden(NOT_MEMBER)
    collate = tx.dialect.collate  # byte order on both, so pages follow ids alike
    rows = tx.all(
        "SELECT user_id, read_seq >= ? FROM conversation_members "
        f"WHERE cid = ? AND user_id{collate} > ? AND until_seq IS NULL "
        f"ORDER BY user_id{collate} LIMIT ?",
        seq,
        cid,
        after or "",
        limit + 1,
    )
    return split_readers(rows, limit)


_RECEIPTS = "me.read_receipts AND pu.read_receipts"
# A member's conversations with the direct peer's row and both users' switches.
_FROM = (
    "FROM conversation_members m JOIN conversations c ON c.cid = m.cid "
    "JOIN users me ON me.id = m.user_id "
    "LEFT JOIN conversation_members p "
    "ON c.kind = 'direct' AND p.cid = c.cid AND p.user_id <> m.user_id "
    "LEFT JOIN users pu ON pu.id = p.user_id "
)
# Changed after the floor: a message, my row, or (receipts on) the peer's read.
_CHANGED_AFTER = (
    f"WHERE m.user_id = ? AND (c.version > ? OR m.version > ? OR (p.version > ? AND {_RECEIPTS}))"
)


def conversation_states(
    tx: Tx,
    user: str,
    since: int | None,
    *,
    limit: int | None = None,
    last_columns: str,
    message: Callable[[Sequence[Any]], StoredMessage],
) -> tuple[list[ConversationState], int]:
    """The user's conversations changed after ``since`` (all if None), and the version.

    With ``limit``, a page of the oldest changes (see ``cut_page``) and its
    version. ``last_columns`` selects the latest message's columns from ``l``
    in the order ``message`` reads them.
    """
    (counter,) = tx.one("SELECT value FROM counters WHERE name = 'version'")
    version = int(counter)
    # A since from the future (a restored database) means: everything.
    floor = -1 if since is None or since > version else since
    greatest = tx.dialect.greatest
    only = ""
    params: tuple[object, ...] = (user, floor, floor, floor)
    if limit is not None:
        change = (
            f"{greatest}(c.version, m.version, CASE WHEN {_RECEIPTS} THEN p.version ELSE 0 END)"
        )
        changes = tx.all(f"SELECT c.cid, {change} {_FROM}{_CHANGED_AFTER}", *params)
        page = cut_page([(str(cid), int(changed)) for cid, changed in changes], limit)
        if page is not None:
            cids, version = page
            only = f" AND {tx.among('c.cid')}"
            params = (*params, tx.array(cids))
    rows = tx.all(
        # A group member's window: from its join (from_seq) to its leaving (until_seq).
        f"SELECT c.cid, c.kind, coalesce(m.until_seq, c.max_seq), {greatest}(c.min_seq, "
        "m.from_seq), m.read_seq, m.muted, m.pinned, m.hidden, m.cleared_seq, m.mention_seq, "
        # The direct peer's read seq only when both allow receipts.
        f"CASE WHEN {_RECEIPTS} THEN p.read_seq END, {last_columns} {_FROM}"
        "LEFT JOIN messages l ON l.cid = c.cid AND l.seq = coalesce(m.until_seq, c.max_seq) "
        "AND l.seq > m.cleared_seq "
        f"{_CHANGED_AFTER}{only} ORDER BY c.version DESC",
        *params,
    )
    return [state_from_row(row, message) for row in rows], version


def receipt_observers(tx: Tx, user: str, cid: str) -> tuple[str, ...]:
    """Who else learns that ``user`` read ``cid``: the direct peer, if both have
    read receipts on (reciprocal); nobody in groups (they ask with READERS)."""
    peer = parse_cid(cid).peer_of(user)
    if peer is None:
        return ()
    (both,) = tx.one("SELECT COUNT(*) FROM users WHERE id IN (?, ?) AND read_receipts", user, peer)
    return (peer,) if both == 2 else ()
