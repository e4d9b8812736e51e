"""Conversations as one member sees them, in PostgreSQL (see ``sandcat.store.conversations``).

The same hooks as the SQLite twin (``sandcat.store.sqlite.conversation_list``),
batched: ``note_appended`` runs once per persister batch, after the messages
are inserted and before the SYNC version is taken. Lock order: the batch
already holds its conversations' rows; it then locks the member rows it
updates, then the version counter — the order READ and CONV_SET use too
(member row, then counter), so they never deadlock with the persister.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

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
from sandcat.store.postgres.conversations import bump_version
from sandcat.store.postgres.database import Connection, Database

_NOT_MEMBER = "not a member of this conversation"


class PostgresConversationStore:
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
    conn: Connection, user: str, cid: str, change: SettingsChange
) -> SettingsUpdate:
    row = conn.execute(
        "SELECT m.pinned, m.muted, m.hidden, m.cleared_seq, coalesce(m.until_seq, c.max_seq) "
        "FROM conversation_members m JOIN conversations c ON c.cid = m.cid "
        "WHERE m.user_id = %s AND m.cid = %s FOR UPDATE OF m",
        (user, cid),
    ).fetchone()
    if row is None:
        raise Forbidden(_NOT_MEMBER)
    pinned, muted, hidden, cleared_seq, max_seq = row
    before = Settings(cid, pinned, muted, hidden, int(cleared_seq))
    after = apply_change(before, change, int(max_seq))
    if after == before:
        return SettingsUpdate(before, changed=False)
    conn.execute(
        "UPDATE conversation_members SET pinned = %s, muted = %s, hidden = %s, "
        "cleared_seq = %s, version = %s WHERE user_id = %s AND cid = %s",
        (
            after.pinned,
            after.muted,
            after.hidden,
            after.cleared_seq,
            bump_version(conn),
            user,
            cid,
        ),
    )
    return SettingsUpdate(after, changed=True)


def _readers(
    conn: Connection, user: str, cid: str, seq: int, after: str | None, limit: int
) -> Readers:
    member = conn.execute(
        "SELECT 1 FROM conversation_members WHERE user_id = %s AND cid = %s AND until_seq IS NULL",
        (user, cid),
    ).fetchone()
    if member is None:
        raise Forbidden(_NOT_MEMBER)
    rows = conn.execute(
        "SELECT user_id, read_seq >= %s FROM conversation_members "
        # Byte order, as in SQLite, so pages follow ids the same way on both.
        'WHERE cid = %s AND user_id COLLATE "C" > %s AND until_seq IS NULL '
        'ORDER BY user_id COLLATE "C" LIMIT %s',
        (seq, cid, after or "", limit + 1),
    ).fetchall()
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
    "WHERE m.user_id = %(user)s AND (c.version > %(floor)s OR m.version > %(floor)s "
    f"OR (p.version > %(floor)s AND {_RECEIPTS}))"
)
_CHANGE = f"GREATEST(c.version, m.version, CASE WHEN {_RECEIPTS} THEN p.version END)"


def conversation_states(
    conn: Connection,
    user: str,
    since: int | None,
    *,
    limit: int | None = None,
    last_columns: str,
    message: Callable[[Sequence[Any]], StoredMessage],
) -> tuple[list[ConversationState], int]:
    """The user's conversations changed after ``since`` (all if None), and the version
    (see the SQLite twin for ``limit``)."""
    counter = conn.execute("SELECT value FROM counters WHERE name = 'version'").fetchone()
    assert counter is not None
    version = int(counter[0])
    # A since from the future (a restored database) means: everything.
    floor = -1 if since is None or since > version else since
    params: dict[str, object] = {"user": user, "floor": floor}
    only = ""
    if limit is not None:
        changes = conn.execute(f"SELECT c.cid, {_CHANGE} {_FROM}{_CHANGED_AFTER}", params)
        page = cut_page([(cid, int(change)) for cid, change in changes], limit)
        if page is not None:
            params["cids"], version = page
            only = " AND c.cid = ANY(%(cids)s)"
    rows = conn.execute(
        # A group member's window: from its join (from_seq) to its leaving (until_seq).
        "SELECT c.cid, c.kind, coalesce(m.until_seq, c.max_seq), GREATEST(c.min_seq, m.from_seq), "
        "m.read_seq, m.muted, m.pinned, m.hidden, m.cleared_seq, m.mention_seq, "
        # The direct peer's read seq only when both allow receipts.
        f"CASE WHEN {_RECEIPTS} THEN p.read_seq END, {last_columns} {_FROM}"
        "LEFT JOIN messages l ON l.cid = c.cid AND l.seq = coalesce(m.until_seq, c.max_seq) "
        "AND l.seq > m.cleared_seq "
        f"{_CHANGED_AFTER}{only} ORDER BY c.version DESC",
        params,
    ).fetchall()
    return [state_from_row(row, message) for row in rows], version


def note_appended(conn: Connection, rows: Iterable[StoredMessage]) -> None:
    """Member state that a batch of new messages changes (see the SQLite twin)."""
    effects = append_effects(rows)
    # Sorted, so concurrent batches lock member rows in one order.
    for changes, column in ((effects.read, "read_seq"), (effects.mentioned, "mention_seq")):
        if changes:
            keys = sorted(changes)
            conn.execute(
                f"UPDATE conversation_members m SET {column} = GREATEST(m.{column}, u.seq) "
                "FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS u(user_id, cid, seq) "
                "WHERE m.user_id = u.user_id AND m.cid = u.cid",
                ([k[0] for k in keys], [k[1] for k in keys], [changes[k] for k in keys]),
            )
    conn.execute(
        "UPDATE conversation_members SET hidden = false WHERE cid = ANY(%s) AND hidden",
        (sorted({cid for _, cid in effects.read}),),
    )
    for cid, (seq, sender) in sorted(effects.everyone.items()):
        conn.execute(
            "UPDATE conversation_members SET mention_seq = GREATEST(mention_seq, %s) "
            "WHERE cid = %s AND user_id <> %s AND until_seq IS NULL",
            (seq, cid, sender),
        )


def receipt_observers(conn: Connection, user: str, cid: str) -> tuple[str, ...]:
    """The direct peer if both have read receipts on (see the SQLite twin)."""
    peer = parse_cid(cid).peer_of(user)
    if peer is None:
        return ()
    row = conn.execute(
        "SELECT COUNT(*) FROM users WHERE id IN (%s, %s) AND read_receipts", (user, peer)
    ).fetchone()
    return (peer,) if row is not None and row[0] == 2 else ()
