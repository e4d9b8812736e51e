"""PostgreSQL's ``Dialect`` for the portable stores (``store.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from sandcat.store.messages import StoredMessage
from sandcat.store.postgres.database import Connection, at, ms
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
        greatest="GREATEST",
        json_in=Jsonb,
        json_out=dict,
        publish=publish,
        skip_locked=" SKIP LOCKED",
        advisory_lock="SELECT pg_advisory_xact_lock(hashtext(?))",
        epoch_day="floor(extract(epoch FROM {}) / 86400)::bigint",
    )


#: The dialect without an outbox (reads, and writes that publish nothing).
DIALECT = dialect()
