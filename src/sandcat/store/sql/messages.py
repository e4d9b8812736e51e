"""The message log's reads, and the store around each engine's append.

See ``sandcat.store.messages`` for the contract. PULL, the conversation list
and READ are the same statements on both engines; the append is not: SQLite
writes one row at a time under its single writer (``store.sqlite.append``),
PostgreSQL locks, dedupes and inserts a whole batch at once with COPY and the
outbox (``store.postgres.append``). ``SqlMessageStore`` runs the engine's
append inside one write transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sandcat.errors import Conflict, Forbidden, StoreUnavailable
from sandcat.ids import new_ids
from sandcat.store.messages import (
    Appended,
    ConversationState,
    NewMessage,
    Origin,
    Page,
    ReadMark,
    Refused,
    StoredMessage,
)
from sandcat.store.sql._tx import Database, Dialect, SqlStore, Tx
from sandcat.store.sql.conversation_list import (
    NOT_MEMBER,
    conversation_states,
    receipt_observers,
)
from sandcat.store.sql.revisions import NOT_HIDDEN, READ_COLUMNS

#: The foundation's columns, written with every message.
WRITTEN = "cid, seq, mid, sender, device, cmid, kind, body, created_at, reply_to, mentions"
#: Every column a ``StoredMessage`` is read from, in ``message_from_row``'s order.
COLUMNS = f"{WRITTEN}, {READ_COLUMNS}"
_LAST_COLUMNS = ", ".join(f"l.{name.strip()}" for name in COLUMNS.split(","))

#: An engine's append: the batch's outcomes, inside the write transaction.
Append = Callable[[Tx, Sequence[NewMessage], int, bool], list[Appended | Refused]]


def message_from_row(dialect: Dialect, row: Sequence[Any]) -> StoredMessage:
    """A ``StoredMessage`` from a row of ``COLUMNS``."""
    (cid, seq, mid, sender, device, cmid, kind, body, created, reply_to, mentions) = row[:11]
    forward_cid, forward_seq, forward_from, edited_at, recalled = row[11:]
    return StoredMessage(
        cid=cid,
        seq=seq,
        mid=mid,
        sender=sender,
        device=device,
        cmid=cmid,
        kind=kind,
        body=bytes(body),
        ts=dialect.time_out(created),
        reply_to=reply_to,
        mentions=dialect.mentions_out(mentions),
        forward=None if forward_cid is None else Origin(forward_cid, forward_seq, forward_from),
        edited_at=None if edited_at is None else dialect.time_out(edited_at),
        recalled=bool(recalled),
    )


def stored_message(
    new: NewMessage, seq: int, now_ms: int, *, mid: str | None = None
) -> StoredMessage:
    """The message ``new`` becomes at ``seq`` (with ``mid``, or a fresh one), for an append."""
    return StoredMessage(
        cid=new.cid,
        seq=seq,
        mid=new_ids(1, now_ms)[0] if mid is None else mid,
        sender=new.sender,
        device=new.device,
        cmid=new.cmid,
        kind=new.kind,
        body=new.body,
        ts=now_ms,
        reply_to=new.reply_to,
        mentions=new.mentions,
        forward=new.forward,
    )


class SqlMessageStore(SqlStore):
    def __init__(
        self,
        db: Database,
        dialect: Dialect,
        *,
        append: Append,
        appended: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(db, dialect)
        self._append = append
        #: Called after a batch committed (wakes the outbox publisher in cluster mode).
        self._appended = appended

    async def append(
        self, batch: Sequence[NewMessage], *, now_ms: int, open_direct: bool
    ) -> list[Appended | Refused]:
        append = self._append
        try:
            outcomes = await self._write(lambda tx: append(tx, batch, now_ms, open_direct))
        except Conflict as exc:
            # A unique index caught what the append's checks should have prevented:
            # store nothing, and let the senders resend (their resend dedupes).
            raise StoreUnavailable(f"batch conflicted, nothing stored: {exc}") from exc
        if self._appended is not None:
            self._appended()
        return outcomes

    async def pull(self, user: str, cid: str, *, after: int, limit: int) -> Page:
        return await self._read(lambda tx: pull(tx, user, cid, after, limit))

    async def conversations(
        self, user: str, *, since: int | None, limit: int | None = None
    ) -> tuple[list[ConversationState], int]:
        def select(tx: Tx) -> tuple[list[ConversationState], int]:
            dialect = tx.dialect
            return conversation_states(
                tx,
                user,
                since,
                limit=limit,
                last_columns=_LAST_COLUMNS,
                message=lambda row: message_from_row(dialect, row),
            )

        return await self._read(select)

    async def mark_read(self, user: str, cid: str, seq: int, *, now_ms: int) -> ReadMark:
        return await self._write(lambda tx: _mark_read(tx, user, cid, seq))


def bounds(tx: Tx, user: str, cid: str, *, lock: bool = False) -> tuple[int, int, int]:
    """The user's readable ``(min_seq, max_seq)`` and read seq; ``Forbidden`` if no member.

    A group member reads only its window: from its join (``from_seq``) unless
    the history is visible, up to its removal or leaving (``until_seq``).
    ``lock`` locks the member row until commit (PostgreSQL).
    """
    row = tx.one(
        # A member never sees seqs up to their cleared seq again (CONV_SET clear).
        f"SELECT {tx.dialect.greatest}(c.min_seq, m.cleared_seq + 1), c.max_seq, m.read_seq, "
        "m.from_seq, m.until_seq FROM conversation_members m "
        "JOIN conversations c ON c.cid = m.cid WHERE m.user_id = ? AND m.cid = ?"
        + (tx.dialect.for_update_of("m") if lock else ""),
        user,
        cid,
    )
    if row is None:
        raise Forbidden(NOT_MEMBER)
    max_seq = int(row[1]) if row[4] is None else min(int(row[1]), int(row[4]))
    return max(int(row[0]), int(row[3])), max_seq, int(row[2])


def pull(tx: Tx, user: str, cid: str, after: int, limit: int) -> Page:
    """Up to ``limit`` messages of ``cid`` after ``after`` that ``user`` may read, ascending."""
    min_seq, max_seq, _ = bounds(tx, user, cid)
    start = max(after, min_seq - 1)
    rows = tx.all(
        f"SELECT {COLUMNS} FROM messages WHERE cid = ? AND seq > ? AND seq <= ? "
        f"AND {NOT_HIDDEN} ORDER BY seq LIMIT ?",
        cid,
        start,
        max_seq,
        user,
        limit + 1,
    )
    dialect = tx.dialect
    return Page(
        messages=tuple(message_from_row(dialect, row) for row in rows[:limit]),
        more=len(rows) > limit,
        min_seq=min_seq,
        max_seq=max_seq,
    )


def _mark_read(tx: Tx, user: str, cid: str, seq: int) -> ReadMark:
    _, max_seq, read_seq = bounds(tx, user, cid, lock=True)
    target = min(seq, max_seq)
    if target <= read_seq:
        return ReadMark(seq=read_seq, advanced=False, observers=())
    # Before the version: its lock is held from there to the commit.
    observers = receipt_observers(tx, user, cid)
    tx.run(
        "UPDATE conversation_members SET read_seq = ?, version = ? WHERE user_id = ? AND cid = ?",
        target,
        tx.bump_version(),
        user,
        cid,
    )
    return ReadMark(seq=target, advanced=True, observers=observers)
