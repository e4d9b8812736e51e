"""The message append in SQLite: one send at a time under the single writer.

SQLite serialises every write transaction, so the batch is checked and
written row by row: who may send (from ``Members``, the member rows kept
between appends), group mutes, uploads, revisions, then one INSERT that takes
the conversation's next seq (the seq after its previous one when the batch
has already appended to it) and dedupes on the ``(sender, cid, cmid)`` key.
Per batch: one UPDATE of each conversation's ``max_seq``, the SYNC version,
the senders' ``read_seq``, and ``hidden = 0`` only where a member had hidden
the conversation (issue 14: 6 statements per message at window 1, from 10).
The reads of the log are portable (``store.sql.messages``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import msgpack

from sandcat.errors import StoreUnavailable
from sandcat.ids import new_ids, parse_cid
from sandcat.store.conversations import append_effects
from sandcat.store.messages import Appended, NewMessage, Refused, StoredMessage
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.conversation_list import NOT_MEMBER
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sql.groups.queries import send_refusal
from sandcat.store.sql.messages import (
    COLUMNS,
    WRITTEN,
    SqlMessageStore,
    message_from_row,
    stored_message,
)
from sandcat.store.sql.revisions import WRITE_COLUMNS, apply, forward_values, refusal
from sandcat.store.sqlite.attachments import record_attachments, uploads_ready
from sandcat.store.sqlite.database import Database
from sandcat.store.sqlite.dialect import DIALECT


def message_store(db: Database) -> SqlMessageStore:
    """The message store over SQLite: the portable reads and this append."""
    return SqlMessageStore(db, DIALECT, append=partial(append, members=Members(db)))


@dataclass(slots=True)
class _Conversation:
    """What the append needs of one conversation's member rows."""

    #: Every member row's ``can_send`` (former members' too: theirs is false).
    can_send: dict[str, bool]
    #: The current members (``until_seq IS NULL``), who get the message.
    members: tuple[str, ...]
    #: Whether some row has ``hidden = 1`` (a send un-hides the conversation).
    hidden: bool


class Members:
    """Member rows per conversation, kept between appends while nothing else wrote.

    Only this server process writes the database (``store.sqlite.lock``; the
    admin commands beside it touch no member rows), and all of its writes are
    ``Database.write`` transactions, which ``Database.commits`` counts. So what
    one append read stays true exactly until some other transaction commits:
    the next append finds the counter one past what it saw (its own commit)
    and keeps the cache, or finds it anywhere else (another write committed,
    or its own commit failed) and forgets it. A membership change followed at
    once by a send is therefore always read afresh.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._seen = -2
        self._by_cid: dict[str, _Conversation] = {}

    def begin(self) -> None:
        """At the start of an append's transaction: forget everything if another committed."""
        if self._db.commits != self._seen + 1:
            self._by_cid.clear()
        self._seen = self._db.commits

    def forget(self, cid: str | None = None) -> None:
        """Drop ``cid`` (its rows changed in this transaction), or everything."""
        if cid is None:
            self._by_cid.clear()
            self._seen = -2
        else:
            self._by_cid.pop(cid, None)

    def of(self, conn: sqlite3.Connection, cid: str) -> _Conversation:
        found = self._by_cid.get(cid)
        if found is None:
            can_send: dict[str, bool] = {}
            members: list[str] = []
            hidden = False
            for user, may, is_hidden, current in conn.execute(
                "SELECT user_id, can_send, hidden, until_seq IS NULL "
                "FROM conversation_members WHERE cid = ?",
                (cid,),
            ):
                can_send[user] = bool(may)
                hidden = hidden or bool(is_hidden)
                if current:
                    members.append(user)
            found = self._by_cid[cid] = _Conversation(can_send, tuple(members), hidden)
        return found


def _can_send(
    tx: Tx, members: Members, sender: str, cid: str, open_direct: bool, now_ms: int
) -> bool:
    conn = tx.conn
    may = members.of(conn, cid).can_send.get(sender)
    if may is not None:
        return may
    if not open_direct:
        return False
    peer = parse_cid(cid).peer_of(sender)
    if peer is None:
        return False
    exists = conn.execute("SELECT 1 FROM users WHERE id = ? AND disabled = 0", (peer,)).fetchone()
    blocked = conn.execute(
        "SELECT 1 FROM blocks "
        "WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?)",
        (sender, peer, peer, sender),
    ).fetchone()
    if exists is None or blocked is not None:
        return False
    open_conversation(tx, cid=cid, kind="direct", members=(sender, peer), now_ms=now_ms)
    members.forget(cid)
    return True


#: A new message's row, its seq the conversation's next; nothing if its
#: ``(sender, cid, cmid)`` is stored already (a resend: G2).
_INSERT = (
    f"INSERT INTO messages ({WRITTEN}, {WRITE_COLUMNS}) "
    "VALUES (?, (SELECT max_seq + 1 FROM conversations WHERE cid = ?), "
    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (sender, cid, cmid) DO NOTHING RETURNING seq"
)
#: The same at a seq the batch already knows: the one after the conversation's
#: previous message in this batch (its ``max_seq`` is written once, at the end).
_INSERT_AT = (
    f"INSERT INTO messages ({WRITTEN}, {WRITE_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (sender, cid, cmid) DO NOTHING RETURNING seq"
)


def append(
    tx: Tx, batch: Sequence[NewMessage], now_ms: int, open_direct: bool, *, members: Members
) -> list[Appended | Refused]:
    """Store ``batch`` one send at a time (see ``sandcat.store.messages``).

    A send is checked (who may send, group mutes, uploads, revisions), then
    inserted with ``ON CONFLICT DO NOTHING``: a resend of a stored message
    inserts nothing and is answered from the stored row (G2), so the common
    case needs no dedupe query. A refused send is looked up first, so that a
    resend the checks would now refuse (a recall already applied, an upload
    already attached) still gets its original back.
    """
    members.begin()
    try:
        return _append(tx, batch, now_ms, open_direct, members)
    except BaseException:
        members.forget()
        raise


def _append(
    tx: Tx, batch: Sequence[NewMessage], now_ms: int, open_direct: bool, members: Members
) -> list[Appended | Refused]:
    conn = tx.conn
    outcomes: list[Appended | Refused] = []
    in_batch: dict[tuple[str, str, str], StoredMessage] = {}
    allowed: dict[tuple[str, str], bool] = {}
    #: Per conversation appended to: its last seq in this batch (its new max_seq).
    last_seq: dict[str, int] = {}
    mids = new_ids(len(batch), now_ms)
    for new in batch:
        key = (new.sender, new.cid, new.cmid)
        earlier = in_batch.get(key)
        if earlier is not None:
            outcomes.append(Appended(earlier, duplicate=True, members=()))
            continue
        may = allowed.get((new.sender, new.cid))
        if may is None:
            may = allowed[(new.sender, new.cid)] = _can_send(
                tx, members, new.sender, new.cid, open_direct, now_ms
            )
        refused: Refused | None = None
        if not may:
            refused = Refused("forbidden", NOT_MEMBER)
        elif (muted := send_refusal(tx, new.sender, new.cid, now_ms)) is not None:
            refused = Refused("forbidden", muted)  # group mutes (store.groups)
        elif new.files and not uploads_ready(conn, new.files):
            refused = Refused("bad_request", "body.file: no such upload")
        else:
            refused = refusal(tx, new, now_ms)
        if refused is not None:
            earlier = _stored(tx, key)
            outcomes.append(
                refused if earlier is None else Appended(earlier, duplicate=True, members=())
            )
            continue
        mid = mids.pop()
        previous = last_seq.get(new.cid)
        row = conn.execute(
            _INSERT if previous is None else _INSERT_AT,
            (
                new.cid,
                new.cid if previous is None else previous + 1,
                mid,
                new.sender,
                new.device,
                new.cmid,
                new.kind,
                new.body,
                now_ms,
                new.reply_to,
                None if new.mentions is None else msgpack.packb(list(new.mentions)),
                *forward_values(new),
            ),
        ).fetchone()
        if row is None:  # a resend of a message stored in an earlier batch
            earlier = _stored(tx, key)
            if earlier is None:
                raise StoreUnavailable(f"no conversation {new.cid} to append to")
            outcomes.append(Appended(earlier, duplicate=True, members=()))
            continue
        stored = stored_message(new, int(row[0]), now_ms, mid=mid)
        last_seq[new.cid] = stored.seq
        apply(tx, new, stored.seq, now_ms)
        if new.files:
            record_attachments(conn, new.files, cid=new.cid, seq=stored.seq, now_ms=now_ms)
        in_batch[key] = stored
        outcomes.append(
            Appended(stored, duplicate=False, members=members.of(conn, new.cid).members)
        )
    if last_seq:
        # One UPDATE per conversation per batch, not per message: nothing in the
        # batch reads max_seq after the conversation's first INSERT (later ones
        # take their seq from ``last_seq``; the checks read min_seq).
        version = tx.bump_version()
        conn.executemany(
            "UPDATE conversations SET max_seq = ?, version = ? WHERE cid = ?",
            [(seq, version, cid) for cid, seq in last_seq.items()],
        )
    _note_appended(
        conn,
        members,
        [o.message for o in outcomes if isinstance(o, Appended) and not o.duplicate],
    )
    return outcomes


def _stored(tx: Tx, key: tuple[str, str, str]) -> StoredMessage | None:
    row = tx.conn.execute(
        f"SELECT {COLUMNS} FROM messages WHERE sender = ? AND cid = ? AND cmid = ?", key
    ).fetchone()
    return None if row is None else message_from_row(tx.dialect, row)


def _note_appended(
    conn: sqlite3.Connection, members: Members, rows: Iterable[StoredMessage]
) -> None:
    """Member state that a batch of new messages changes (in the append's transaction):
    one statement per kind of change, run only when there is some."""
    effects = append_effects(rows)
    if effects.read:
        conn.executemany(
            "UPDATE conversation_members SET read_seq = max(read_seq, ?) "
            "WHERE user_id = ? AND cid = ?",
            [(seq, user, cid) for (user, cid), seq in effects.read.items()],
        )
    unhide = []
    for cid in {cid for _, cid in effects.read}:
        conversation = members.of(conn, cid)
        if conversation.hidden:
            unhide.append((cid,))
            conversation.hidden = False
    if unhide:
        conn.executemany(
            "UPDATE conversation_members SET hidden = 0 WHERE cid = ? AND hidden = 1", unhide
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
