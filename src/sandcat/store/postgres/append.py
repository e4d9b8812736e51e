"""The message append in PostgreSQL: a whole batch set-based (the reads of the
log are portable: ``store.sql.messages``).

One batch is one transaction, in this order:

1. row-lock the batch's existing conversations, in cid order (two persisters
   on two instances never deadlock on each other, and a resend racing its
   original on another instance waits for it);
2. open direct conversations a send may open (``open_direct``), which locks
   their new rows;
3. dedupe every ``(sender, cid, cmid)`` against the table — under the locks,
   so a concurrent original is either committed and found, or not stored;
4. check who may send and that attached uploads are still ready (locking
   them against a concurrent delete); refused sends take no seq;
5. ``UPDATE conversations SET max_seq = max_seq + n ... RETURNING`` allocates
   each conversation's seqs, then COPY inserts the rows;
6. take the SYNC version last (it serialises writers until commit, see
   ``conversations``) and stamp the conversations with it;
7. in cluster mode, write an outbox row per new message (``outbox``), so the
   event reaches the bus if and only if the message is committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import partial

from sandcat.ids import parse_cid
from sandcat.store.conversations import append_effects
from sandcat.store.messages import Appended, NewMessage, Refused, StoredMessage
from sandcat.store.outbox import Outbox
from sandcat.store.postgres.attachments import ready_uploads, record_attachments
from sandcat.store.postgres.database import Connection, Database, at
from sandcat.store.postgres.dialect import DIALECT
from sandcat.store.postgres.outbox import write_outbox
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

Key = tuple[str, str, str]


def message_store(db: Database, *, outbox: Outbox | None = None) -> SqlMessageStore:
    """The message store over PostgreSQL: the portable reads and this append; with
    ``outbox`` (cluster mode), each new message's event goes there in its transaction."""
    if outbox is None:
        return SqlMessageStore(db, DIALECT, append=append)
    return SqlMessageStore(
        db,
        DIALECT,
        append=partial(append, outbox_owner=outbox.owner),
        appended=outbox.signal.set,
    )


def _may_open(conn: Connection, sender: str, cid: str) -> bool:
    """May ``sender`` open the direct conversation ``cid`` (``dm_policy = "anyone"``)?"""
    peer = parse_cid(cid).peer_of(sender)
    if peer is None:
        return False
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = %(peer)s AND NOT disabled) "
        "AND NOT EXISTS (SELECT 1 FROM blocks WHERE (user_id = %(me)s AND blocked_id = %(peer)s) "
        "OR (user_id = %(peer)s AND blocked_id = %(me)s))",
        {"me": sender, "peer": peer},
    ).fetchone()
    return bool(row and row[0])


def append(
    tx: Tx,
    batch: Sequence[NewMessage],
    now_ms: int,
    open_direct: bool,
    outbox_owner: str | None = None,
) -> list[Appended | Refused]:
    """Store ``batch`` in the order of the module docstring (see ``sandcat.store.messages``)."""
    if not batch:
        return []
    conn: Connection = tx.conn
    existing = tx.lock_conversations(new.cid for new in batch)
    version: int | None = None
    if open_direct:
        for sender, cid in dict.fromkeys((new.sender, new.cid) for new in batch):
            if cid not in existing and _may_open(conn, sender, cid):
                peer = parse_cid(cid).peer_of(sender)
                assert peer is not None
                version = open_conversation(
                    tx,
                    cid=cid,
                    kind="direct",
                    members=(sender, peer),
                    now_ms=now_ms,
                    version=version,
                )
                existing.add(cid)
    keys = list(dict.fromkeys((new.sender, new.cid, new.cmid) for new in batch))
    stored: dict[Key, StoredMessage] = {
        (m.sender, m.cid, m.cmid): m
        for m in map(
            partial(message_from_row, tx.dialect),
            conn.execute(
                f"SELECT {COLUMNS} FROM messages WHERE (sender, cid, cmid) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
                ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
            ),
        )
    }
    pairs = list(dict.fromkeys((new.sender, new.cid) for new in batch))
    allowed = {
        (user, cid)
        for user, cid in conn.execute(
            "SELECT m.user_id, m.cid FROM conversation_members m "
            "JOIN unnest(%s::text[], %s::text[]) AS p(user_id, cid) "
            "ON m.user_id = p.user_id AND m.cid = p.cid WHERE m.can_send",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        )
    }
    attached = {f for new in batch if (new.sender, new.cid) in allowed for f in new.files}
    ready = ready_uploads(conn, list(attached)) if attached else set()
    muted = {pair: why for pair in allowed if (why := send_refusal(tx, *pair, now_ms))}
    # Decide each send, in order: duplicate, refused, or new (counted per cid).
    fresh: list[NewMessage] = []
    refused: dict[int, Refused] = {}
    seen: set[Key] = set()
    recalled: set[tuple[str, int]] = set()
    for index, new in enumerate(batch):
        key = (new.sender, new.cid, new.cmid)
        if key in stored or key in seen:
            continue
        if (new.sender, new.cid) not in allowed:
            refused[index] = Refused("forbidden", NOT_MEMBER)
        elif (new.sender, new.cid) in muted:  # group mutes (store.groups)
            refused[index] = Refused("forbidden", muted[(new.sender, new.cid)])
        elif not ready.issuperset(new.files):
            refused[index] = Refused("bad_request", "body.file: no such upload")
        elif (revision := refusal(tx, new, now_ms, recalled)) is not None:
            refused[index] = revision
        else:
            seen.add(key)
            fresh.append(new)
    counts = Counter(new.cid for new in fresh)
    next_seq: dict[str, int] = {}
    if counts:
        cids = sorted(counts)
        for cid, max_seq in conn.execute(
            "UPDATE conversations c SET max_seq = c.max_seq + u.n "
            "FROM unnest(%s::text[], %s::bigint[]) AS u(cid, n) WHERE c.cid = u.cid "
            "RETURNING c.cid, c.max_seq",
            (cids, [counts[cid] for cid in cids]),
        ):
            next_seq[cid] = max_seq - counts[cid] + 1
    rows: list[StoredMessage] = []
    sent_files: list[tuple[str, str, int]] = []
    for new in fresh:
        seq = next_seq[new.cid]
        next_seq[new.cid] = seq + 1
        message = stored_message(new, seq, now_ms)
        stored[(new.sender, new.cid, new.cmid)] = message
        rows.append(message)
        sent_files.extend((file_id, new.cid, seq) for file_id in dict.fromkeys(new.files))
    members: dict[str, tuple[str, ...]] = {}
    if rows:
        _insert(conn, rows, now_ms)
        for new, message in zip(fresh, rows, strict=True):
            apply(tx, new, message.seq, now_ms)
        record_attachments(conn, sent_files, now_ms)
        hidden: set[str] = set()
        for user, cid, current, is_hidden in conn.execute(
            "SELECT user_id, cid, until_seq IS NULL, hidden FROM conversation_members "
            "WHERE cid = ANY(%s)",
            (list(counts),),
        ):
            if current:
                members[cid] = (*members.get(cid, ()), user)
            if is_hidden:
                hidden.add(cid)
        _note_appended(conn, rows, hidden)
        if version is None:
            version = tx.bump_version()
        conn.execute(
            "UPDATE conversations SET version = %s WHERE cid = ANY(%s)", (version, list(counts))
        )
        if outbox_owner is not None:
            write_outbox(conn, outbox_owner, rows, members)
    first = {id(message) for message in rows}
    outcomes: list[Appended | Refused] = []
    for index, new in enumerate(batch):
        found = stored.get((new.sender, new.cid, new.cmid))
        if found is None:
            outcomes.append(refused[index])
        elif id(found) in first:
            first.discard(id(found))
            outcomes.append(Appended(found, duplicate=False, members=members[new.cid]))
        else:
            outcomes.append(Appended(found, duplicate=True, members=()))
    return outcomes


def _insert(conn: Connection, rows: list[StoredMessage], now_ms: int) -> None:
    created = at(now_ms)
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY messages ({WRITTEN}, {WRITE_COLUMNS}) FROM STDIN") as copy,
    ):
        for m in rows:
            copy.write_row(
                (
                    m.cid,
                    m.seq,
                    m.mid,
                    m.sender,
                    m.device,
                    m.cmid,
                    m.kind,
                    m.body,
                    created,
                    m.reply_to,
                    None if m.mentions is None else list(m.mentions),
                    *forward_values(m),
                )
            )


def _note_appended(conn: Connection, rows: Iterable[StoredMessage], hidden: set[str]) -> None:
    """Member state that a batch of new messages changes (in the append's transaction): each
    sender has read up to their own message, mentioned members get their mention
    seq, and members who hid the conversation see it again (``hidden``: the
    conversations where some member row is hidden; the UPDATE runs only for
    them). Taken after the messages are inserted and before the SYNC version;
    sorted, so concurrent batches lock member rows in one order."""
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
    if hidden:
        conn.execute(
            "UPDATE conversation_members SET hidden = false WHERE cid = ANY(%s) AND hidden",
            (sorted(hidden),),
        )
    for cid, (seq, sender) in sorted(effects.everyone.items()):
        conn.execute(
            "UPDATE conversation_members SET mention_seq = GREATEST(mention_seq, %s) "
            "WHERE cid = %s AND user_id <> %s AND until_seq IS NULL",
            (seq, cid, sender),
        )
