"""The message log in PostgreSQL (see ``sandcat.store.messages`` for the contract).

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
from collections.abc import Sequence
from typing import Any

from sandcat.errors import Conflict, Forbidden, StoreUnavailable
from sandcat.ids import new_id, parse_cid
from sandcat.store.messages import (
    Appended,
    ConversationState,
    NewMessage,
    Page,
    ReadMark,
    Refused,
    StoredMessage,
)
from sandcat.store.outbox import Outbox
from sandcat.store.postgres.attachments import ready_uploads, record_attachments
from sandcat.store.postgres.conversation_list import (
    conversation_states,
    note_appended,
    receipt_observers,
)
from sandcat.store.postgres.conversations import (
    bump_version,
    lock_conversations,
    open_conversation,
)
from sandcat.store.postgres.database import Connection, Database, at, ms
from sandcat.store.postgres.groups import send_refusal
from sandcat.store.postgres.outbox import write_outbox
from sandcat.store.postgres.revisions import (
    NOT_HIDDEN,
    READ_COLUMNS,
    WRITE_COLUMNS,
    apply,
    forward_values,
    refusal,
    revision_fields,
)

_WRITTEN = "cid, seq, mid, sender, device, cmid, kind, body, created_at, reply_to, mentions"
_COLUMNS = f"{_WRITTEN}, {READ_COLUMNS}"
_LAST_COLUMNS = ", ".join(f"l.{name.strip()}" for name in _COLUMNS.split(","))
_NOT_MEMBER = "not a member of this conversation"

Key = tuple[str, str, str]


def _message(row: Sequence[Any]) -> StoredMessage:
    cid, seq, mid, sender, device, cmid, kind, body, created, reply_to, mentions = row[:11]
    return StoredMessage(
        cid=cid,
        seq=seq,
        mid=mid,
        sender=sender,
        device=device,
        cmid=cmid,
        kind=kind,
        body=bytes(body),
        ts=ms(created),
        reply_to=reply_to,
        mentions=None if mentions is None else tuple(mentions),
        **revision_fields(row[11:]),
    )


class PostgresMessageStore:
    def __init__(self, db: Database, *, outbox: Outbox | None = None) -> None:
        self._db = db
        #: Cluster mode: where each new message's event goes, in its transaction.
        self._outbox = outbox

    async def append(
        self, batch: Sequence[NewMessage], *, now_ms: int, open_direct: bool
    ) -> list[Appended | Refused]:
        owner = None if self._outbox is None else self._outbox.owner
        try:
            outcomes = await self._db.write(
                lambda conn: _append(conn, batch, now_ms, open_direct, owner)
            )
        except Conflict as exc:
            # A unique index caught what the locks should have prevented: store
            # nothing, and let the senders resend (their resend dedupes).
            raise StoreUnavailable(f"batch conflicted, nothing stored: {exc}") from exc
        if self._outbox is not None:
            self._outbox.signal.set()
        return outcomes

    async def pull(self, user: str, cid: str, *, after: int, limit: int) -> Page:
        return await self._db.read(lambda conn: _pull(conn, user, cid, after, limit))

    async def conversations(
        self, user: str, *, since: int | None, limit: int | None = None
    ) -> tuple[list[ConversationState], int]:
        return await self._db.read(lambda conn: _conversations(conn, user, since, limit))

    async def mark_read(self, user: str, cid: str, seq: int, *, now_ms: int) -> ReadMark:
        return await self._db.write(lambda conn: _mark_read(conn, user, cid, seq))


def _may_open(conn: Connection, sender: str, cid: str) -> bool:
    """May ``sender`` open the direct conversation ``cid`` (``dm_policy = "anyone"``)?"""
    if not cid.startswith("d:"):
        return False
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


def _append(
    conn: Connection,
    batch: Sequence[NewMessage],
    now_ms: int,
    open_direct: bool,
    outbox_owner: str | None = None,
) -> list[Appended | Refused]:
    if not batch:
        return []
    existing = lock_conversations(conn, (new.cid for new in batch))
    version: int | None = None
    if open_direct:
        for sender, cid in dict.fromkeys((new.sender, new.cid) for new in batch):
            if cid not in existing and _may_open(conn, sender, cid):
                peer = parse_cid(cid).peer_of(sender)
                assert peer is not None
                version = open_conversation(
                    conn,
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
            _message,
            conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE (sender, cid, cmid) IN "
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
    muted = {pair: why for pair in allowed if (why := send_refusal(conn, *pair, now_ms))}
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
            refused[index] = Refused("forbidden", _NOT_MEMBER)
        elif (new.sender, new.cid) in muted:  # group mutes (store.groups)
            refused[index] = Refused("forbidden", muted[(new.sender, new.cid)])
        elif not ready.issuperset(new.files):
            refused[index] = Refused("bad_request", "body.file: no such upload")
        elif (revision := refusal(conn, new, now_ms, recalled)) is not None:
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
        message = StoredMessage(
            cid=new.cid,
            seq=seq,
            mid=new_id(),
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
        stored[(new.sender, new.cid, new.cmid)] = message
        rows.append(message)
        sent_files.extend((file_id, new.cid, seq) for file_id in dict.fromkeys(new.files))
    members: dict[str, tuple[str, ...]] = {}
    if rows:
        _insert(conn, rows, now_ms)
        for new, message in zip(fresh, rows, strict=True):
            apply(conn, new, message.seq, now_ms)
        record_attachments(conn, sent_files, now_ms)
        note_appended(conn, rows)
        for user, cid in conn.execute(
            "SELECT user_id, cid FROM conversation_members "
            "WHERE cid = ANY(%s) AND until_seq IS NULL",
            (list(counts),),
        ):
            members[cid] = (*members.get(cid, ()), user)
        if version is None:
            version = bump_version(conn)
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
        cursor.copy(f"COPY messages ({_WRITTEN}, {WRITE_COLUMNS}) FROM STDIN") as copy,
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


def _bounds(conn: Connection, user: str, cid: str, *, lock: bool = False) -> tuple[int, int, int]:
    """The user's readable ``(min_seq, max_seq)`` and read seq; ``Forbidden`` if no member.

    A group member reads only its window: from its join (``from_seq``) unless
    the history is visible, up to its removal or leaving (``until_seq``).
    """
    row = conn.execute(
        # A member never sees seqs up to their cleared seq again (CONV_SET clear).
        "SELECT GREATEST(c.min_seq, m.cleared_seq + 1), c.max_seq, m.read_seq, m.from_seq, "
        "m.until_seq FROM conversation_members m "
        "JOIN conversations c ON c.cid = m.cid WHERE m.user_id = %s AND m.cid = %s"
        + (" FOR UPDATE OF m" if lock else ""),
        (user, cid),
    ).fetchone()
    if row is None:
        raise Forbidden(_NOT_MEMBER)
    max_seq = int(row[1]) if row[4] is None else min(int(row[1]), int(row[4]))
    return max(int(row[0]), int(row[3])), max_seq, int(row[2])


def _pull(conn: Connection, user: str, cid: str, after: int, limit: int) -> Page:
    min_seq, max_seq, _ = _bounds(conn, user, cid)
    start = max(after, min_seq - 1)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE cid = %s AND seq > %s AND seq <= %s "
        f"AND {NOT_HIDDEN} ORDER BY seq LIMIT %s",
        (cid, start, max_seq, user, limit + 1),
    ).fetchall()
    return Page(
        messages=tuple(_message(row) for row in rows[:limit]),
        more=len(rows) > limit,
        min_seq=min_seq,
        max_seq=max_seq,
    )


def _conversations(
    conn: Connection, user: str, since: int | None, limit: int | None
) -> tuple[list[ConversationState], int]:
    return conversation_states(
        conn, user, since, limit=limit, last_columns=_LAST_COLUMNS, message=_message
    )


def _mark_read(conn: Connection, user: str, cid: str, seq: int) -> ReadMark:
    _, max_seq, read_seq = _bounds(conn, user, cid, lock=True)
    target = min(seq, max_seq)
    if target <= read_seq:
        return ReadMark(seq=read_seq, advanced=False, observers=())
    # Before the version: its lock is held from there to the commit.
    observers = receipt_observers(conn, user, cid)
    conn.execute(
        "UPDATE conversation_members SET read_seq = %s, version = %s "
        "WHERE user_id = %s AND cid = %s",
        (target, bump_version(conn), user, cid),
    )
    return ReadMark(seq=target, advanced=True, observers=observers)
