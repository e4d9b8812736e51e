"""Recall and edit events, and the message columns this part adds.

See ``sandcat.store.revisions`` for the rules; here the target is looked up
and revised inside the append's transaction (PostgreSQL's append has
row-locked the batch's conversations, so no other writer revises the same
target at the same time). Within one batch, ``pending`` carries the recalls
already accepted, for an append that takes every decision before writing a
row. Also here: the forward columns of a message row, and the filter that
leaves out what a user hid (``hidden_messages``), used by PULL and HISTORY.
"""

from __future__ import annotations

from sandcat.protocol import Kind, parse_cid
from sandcat.store.messages import NewMessage, Refused, StoredMessage
from sandcat.store.revisions import TOMBSTONE, is_revision, judge
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.groups.queries import role_of

#: Columns written with every message, after the foundation's.
WRITE_COLUMNS = "forward_cid, forward_seq, forward_from"
#: Columns read with every message, after the foundation's.
READ_COLUMNS = f"{WRITE_COLUMNS}, edited_at, recalled"
#: True for a row of ``messages`` the user (the one ``?``) did not hide.
NOT_HIDDEN = (
    "NOT EXISTS (SELECT 1 FROM hidden_messages h "
    "WHERE h.user_id = ? AND h.cid = messages.cid AND h.seq = messages.seq)"
)


def forward_values(
    message: NewMessage | StoredMessage,
) -> tuple[str | None, int | None, str | None]:
    """The ``WRITE_COLUMNS`` values of a message."""
    origin = message.forward
    if origin is None:
        return None, None, None
    return origin.cid, origin.seq, origin.sender


def refusal(
    tx: Tx, new: NewMessage, now_ms: int, pending: set[tuple[str, int]] | None = None
) -> Refused | None:
    """Why the recall or edit ``new`` may not be stored; None if it may (or is neither).

    ``pending`` holds the ``(cid, seq)`` recalled earlier in the same batch but
    not written yet; an accepted recall is added to it.
    """
    if not is_revision(new):
        return None
    assert new.target is not None
    row = tx.one(
        "SELECT m.sender, m.kind, m.created_at, m.recalled FROM messages m "
        "JOIN conversations c ON c.cid = m.cid "
        "WHERE m.cid = ? AND m.seq = ? AND m.seq >= c.min_seq",
        new.cid,
        new.target,
    )
    if row is None:
        return Refused("bad_request", "seq: no such message")
    role = None
    group = parse_cid(new.cid).group if new.kind == Kind.RECALL else None
    if group is not None:
        role = role_of(tx, group, new.sender)
    key = (new.cid, new.target)
    refused = judge(
        new,
        now_ms=now_ms,
        sender=str(row[0]),
        kind=int(row[1]),
        created=tx.time_out(row[2]),
        recalled=bool(row[3]) or (pending is not None and key in pending),
        role=role,
    )
    if refused is None and pending is not None and new.kind == Kind.RECALL:
        pending.add(key)
    return refused


def apply(tx: Tx, new: NewMessage, seq: int, now_ms: int) -> None:
    """After ``new`` was stored at ``seq``: note its files; revise a recall's or edit's target."""
    if new.files:
        tx.many(
            "INSERT INTO message_files (cid, seq, file_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(new.cid, seq, file_id) for file_id in dict.fromkeys(new.files)],
        )
    if not is_revision(new):
        return
    if new.kind == Kind.RECALL:
        _withdraw_files(tx, new.cid, new.target)
        tx.run(
            "UPDATE messages SET recalled = TRUE, body = ?, mentions = NULL "
            "WHERE cid = ? AND seq = ?",
            TOMBSTONE,
            new.cid,
            new.target,
        )
    else:
        tx.run(
            "UPDATE messages SET body = ?, edited_at = ? WHERE cid = ? AND seq = ?",
            new.replacement,
            tx.time_in(now_ms),
            new.cid,
            new.target,
        )


def _withdraw_files(tx: Tx, cid: str, seq: int | None) -> None:
    """A recalled message's files stop being readable in ``cid`` (``attachments``),
    unless another message there still refers to them; the uploader keeps them."""
    gone = tx.all("DELETE FROM message_files WHERE cid = ? AND seq = ? RETURNING file_id", cid, seq)
    for (file_id,) in gone:
        if (
            tx.one("SELECT 1 FROM message_files WHERE cid = ? AND file_id = ?", cid, file_id)
            is None
        ):
            tx.run("DELETE FROM attachments WHERE file_id = ? AND cid = ?", file_id, cid)
