"""The outbox in PostgreSQL (see ``sandcat.store.outbox`` for the contract).

Times are the database's ``now()``, so instances on hosts with skewed clocks
agree on whose heartbeat is stale. A take-over is one UPDATE: rows of two
dead instances claimed by two live ones at once each end up with exactly one
of them (the second UPDATE re-checks the row's new, live owner and skips it).
"""

from __future__ import annotations

from collections.abc import Sequence

from sandcat.bus.event import Event, encode_event
from sandcat.store.messages import StoredMessage
from sandcat.store.outbox import OutboxRow, choose_slot
from sandcat.store.postgres.database import Connection, Database

#: The advisory lock that serialises delivery-slot claims.
_SLOT_LOCK = 0x5A17_0001


def write_outbox(
    conn: Connection,
    owner: str,
    rows: Sequence[StoredMessage],
    members: dict[str, tuple[str, ...]],
) -> None:
    """Add an event per new message, in the caller's (the append's) transaction."""
    with (
        conn.cursor() as cursor,
        cursor.copy("COPY outbox (owner, cid, payload) FROM STDIN") as copy,
    ):
        for message in rows:
            event = Event(origin=owner, message=message, members=members[message.cid])
            copy.write_row((owner, message.cid, encode_event(event)))


class PostgresOutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def heartbeat(self, instance: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO outbox_owners (instance, heartbeat_at) VALUES (%s, now()) "
                "ON CONFLICT (instance) DO UPDATE SET heartbeat_at = now()",
                (instance,),
            )
        )

    async def take_over(self, instance: str, *, lease_s: float) -> int:
        def claim(conn: Connection) -> int:
            claimed = conn.execute(
                "UPDATE outbox SET owner = %(me)s WHERE owner <> %(me)s AND owner NOT IN "
                "(SELECT instance FROM outbox_owners "
                "WHERE heartbeat_at >= now() - make_interval(secs => %(lease)s))",
                {"me": instance, "lease": lease_s},
            ).rowcount
            # Forget instances long gone (their rows, if any, were claimed above).
            conn.execute(
                "DELETE FROM outbox_owners WHERE instance <> %(me)s "
                "AND heartbeat_at < now() - make_interval(secs => %(lease)s)",
                {"me": instance, "lease": lease_s},
            )
            return claimed

        return await self._db.write(claim)

    async def pending(self, instance: str, *, limit: int) -> list[OutboxRow]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT id, cid, payload FROM outbox WHERE owner = %s ORDER BY id LIMIT %s",
                (instance, limit),
            ).fetchall()
        )
        return [OutboxRow(id=row[0], cid=row[1], payload=bytes(row[2])) for row in rows]

    async def remove(self, ids: Sequence[int]) -> None:
        if ids:
            await self._db.write(
                lambda conn: conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (list(ids),))
            )

    async def claim_slot(
        self, instance: str, *, count: int, lease_s: float, keep: int | None = None
    ) -> int:
        def claim(conn: Connection) -> int:
            # One claim at a time across the cluster: two starting instances never pick one slot.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SLOT_LOCK,))
            slot = keep
            if slot is None:
                taken = conn.execute(
                    "SELECT slot FROM outbox_owners WHERE slot IS NOT NULL AND instance <> %s "
                    "AND heartbeat_at >= now() - make_interval(secs => %s)",
                    (instance, lease_s),
                ).fetchall()
                slot = choose_slot((row[0] for row in taken), count)
            # The row may have been forgotten while this instance was silent: written again.
            conn.execute(
                "INSERT INTO outbox_owners (instance, heartbeat_at, slot) VALUES (%s, now(), %s) "
                "ON CONFLICT (instance) DO UPDATE SET heartbeat_at = now(), slot = EXCLUDED.slot",
                (instance, slot),
            )
            return slot

        return await self._db.write(claim)

    async def slots(self, *, lease_s: float) -> dict[str, int]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT instance, slot FROM outbox_owners WHERE slot IS NOT NULL "
                "AND heartbeat_at >= now() - make_interval(secs => %s)",
                (lease_s,),
            ).fetchall()
        )
        return {row[0]: row[1] for row in rows}

    async def retire(self, instance: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE outbox_owners SET heartbeat_at = '-infinity' WHERE instance = %s",
                (instance,),
            )
        )
