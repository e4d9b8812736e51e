"""Message retention on PostgreSQL: whole month partitions leave, ``min_seq`` moves (G7).

With ``[retention] messages_days`` set, the partitions janitor retires every
month partition that lies entirely before ``now - messages_days`` (so up to a
month more than the policy is kept: a partition goes whole or not at all).
Each partition is retired in one transaction:

1. read each conversation's highest seq in the partition (the month is over:
   no send writes there any more);
2. row-lock those conversations, in cid order like the persister does, then
   take the messages table's exclusive lock (the persister locks all its
   conversations before it inserts, so the two never wait on each other in a
   cycle; ``lock_timeout`` bounds how long sends and pulls queue behind it);
3. detach the partition;
4. move each conversation's ``min_seq`` past that seq (never back) and bump
   its SYNC version, and delete any of its rows below the new ``min_seq``
   left in other partitions (a message whose instance clock put it in the
   next month), so every seq at or above ``min_seq`` is still there and none
   below it is: PULL answers from ``min_seq`` and clients skip to it (G4);
5. drop the detached table, or keep it as ``archived_messages_YYYY_MM`` for
   the operator to dump (``archive = "detach"``).

Rows of old months that never had a partition (they sit in the DEFAULT one)
are deleted row by row under the same rule.

If anything fails, nothing changes; the next round tries again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import sql

from sandcat.store.postgres.database import Connection, Database, at
from sandcat.store.postgres.dialect import DIALECT
from sandcat.store.sql._tx import Tx

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"messages_(\d{4})_(\d{2})")
#: How long retiring a partition may wait for the messages table's lock.
_LOCK_TIMEOUT = "1s"


@dataclass(frozen=True, slots=True)
class Retired:
    partition: str
    #: The conversations whose ``min_seq`` moved, and where it is now.
    min_seqs: dict[str, int]


def _month_end(year: int, month: int) -> datetime:
    index = year * 12 + month  # the month after, 0-based
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def expired_partitions(conn: Connection, *, before_ms: int) -> list[str]:
    """The month partitions of messages whose whole month lies before ``before_ms``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'messages'::regclass"
    ).fetchall()
    cutoff = at(before_ms)
    expired = []
    for (name,) in rows:
        match = _PARTITION.fullmatch(name)
        if match and _month_end(int(match[1]), int(match[2])) <= cutoff:
            expired.append(str(name))
    return sorted(expired)


def retire_partition(conn: Connection, partition: str, *, archive: bool) -> Retired:
    """Retire one partition in the caller's transaction (see the module docstring)."""
    part = sql.Identifier(partition)
    tops = conn.execute(
        sql.SQL("SELECT cid, max(seq) FROM {} GROUP BY cid ORDER BY cid").format(part)
    ).fetchall()
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
    Tx(conn, DIALECT).lock_conversations((str(cid) for cid, _ in tops))
    conn.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
    # Detached first, so the deletes below spare the rows an archive keeps.
    conn.execute(sql.SQL("ALTER TABLE messages DETACH PARTITION {}").format(part))
    min_seqs = _move_min_seqs(conn, [(str(cid), int(top)) for cid, top in tops]) if tops else {}
    if archive:
        archived = sql.Identifier(f"archived_{partition}")
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(part, archived))
    else:
        conn.execute(sql.SQL("DROP TABLE {}").format(part))
    return Retired(partition, min_seqs)


def retire_default_rows(conn: Connection, *, before_ms: int) -> dict[str, int]:
    """Rows of months that never had a partition (the DEFAULT one) go row by row,
    with the same ``min_seq`` rule, in the caller's transaction."""
    tops = conn.execute(
        "SELECT cid, max(seq) FROM messages_default WHERE created_at < %s GROUP BY cid "
        "ORDER BY cid",
        (at(before_ms),),
    ).fetchall()
    if not tops:
        return {}
    return _move_min_seqs(conn, [(str(cid), int(top)) for cid, top in tops])


def _move_min_seqs(conn: Connection, tops: list[tuple[str, int]]) -> dict[str, int]:
    """Move ``min_seq`` past each ``(cid, top)`` and delete every row below it."""
    cids = [cid for cid, _ in tops]
    Tx(conn, DIALECT).lock_conversations(cids)
    rows = conn.execute(
        "UPDATE conversations c SET min_seq = GREATEST(c.min_seq, t.top + 1) "
        "FROM unnest(%s::text[], %s::bigint[]) AS t(cid, top) WHERE c.cid = t.cid "
        "RETURNING c.cid, c.min_seq",
        (cids, [top for _, top in tops]),
    ).fetchall()
    min_seqs = {str(cid): int(low) for cid, low in rows}
    conn.execute(
        "DELETE FROM messages m USING unnest(%s::text[], %s::bigint[]) AS t(cid, low) "
        "WHERE m.cid = t.cid AND m.seq < t.low",
        (list(min_seqs), list(min_seqs.values())),
    )
    # Last, like every writer: the version counter serialises until commit.
    version = Tx(conn, DIALECT).bump_version()
    conn.execute(
        "UPDATE conversations SET version = %s WHERE cid = ANY(%s)", (version, list(min_seqs))
    )
    return min_seqs


async def apply_retention(
    db: Database, *, now_ms: int, messages_days: int, archive: bool
) -> list[Retired]:
    """Retire every partition older than the policy, one transaction each."""
    before_ms = now_ms - messages_days * 86_400_000
    partitions = await db.read(lambda conn: expired_partitions(conn, before_ms=before_ms))
    retired = []
    for partition in partitions:
        done = await db.write(
            lambda conn, p=partition: retire_partition(conn, p, archive=archive)  # type: ignore[misc]
        )
        log.info(
            "retention: %s %s; min_seq moved in %d conversations",
            "archived" if archive else "dropped",
            partition,
            len(done.min_seqs),
        )
        retired.append(done)
    strays = await db.write(lambda conn: retire_default_rows(conn, before_ms=before_ms))
    if strays:
        retired.append(Retired("messages_default", strays))
    return retired
