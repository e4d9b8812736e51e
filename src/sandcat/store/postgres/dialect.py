"""PostgreSQL's ``Dialect`` for the portable stores (``store.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandcat.store.messages import StoredMessage
from sandcat.store.postgres.database import Connection, at, ms
from sandcat.store.postgres.inbox import post_notices
from sandcat.store.postgres.outbox import write_outbox
from sandcat.store.sql._tx import Dialect


def _mentions_in(mentions: Sequence[str] | None) -> list[str] | None:
    return None if mentions is None else list(mentions)


def _mentions_out(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def dialect(outbox_owner: str | None = None) -> Dialect:
    """PostgreSQL's dialect; with ``outbox_owner`` (cluster mode), system messages
    written through ``Tx.publish`` get their outbox row."""

    def publish(conn: Connection, message: StoredMessage, members: tuple[str, ...]) -> None:
        if outbox_owner is not None:
            write_outbox(conn, outbox_owner, [message], {message.cid: members})

    return Dialect(
        name="postgres",
        for_update=" FOR UPDATE",
        collate=' COLLATE "C"',
        is_not="IS DISTINCT FROM",
        member_of="= ANY(?)",
        list_param=list,
        time_in=at,
        time_out=ms,
        mentions_in=_mentions_in,
        mentions_out=_mentions_out,
        post_notices=lambda conn, notices, now_ms: post_notices(conn, notices, now_ms=now_ms),
        publish=publish,
        skip_locked=" SKIP LOCKED",
        advisory_lock="SELECT pg_advisory_xact_lock(hashtext(?))",
    )


#: The dialect without an outbox (reads, and writes that publish nothing).
DIALECT = dialect()
