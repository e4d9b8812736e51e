"""Task leases in PostgreSQL (``sandcat.leadership``): who runs each cluster singleton.

A lease is one row, ``(name, holder, expires_at)`` in database time, so
instances on hosts with skewed clocks agree on when it ran out. Taking and
renewing are the same single statement: an upsert that only overwrites the
row when its holder is the caller or it has expired, so of two instances
racing for a free lease exactly one gets it. Cluster mode is PostgreSQL only
(``server.role`` is refused on SQLite), hence no SQLite twin.
"""

from __future__ import annotations

from sandcat.store.postgres.database import Connection, Database


class PostgresLeaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def acquire(self, name: str, holder: str, *, lease_s: float) -> bool:
        """Take or renew ``name`` for ``holder`` until ``lease_s`` from now; whether held."""

        def take(conn: Connection) -> bool:
            row = conn.execute(
                "INSERT INTO task_leases (name, holder, expires_at) "
                "VALUES (%(name)s, %(holder)s, now() + make_interval(secs => %(lease)s)) "
                "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
                "expires_at = EXCLUDED.expires_at "
                "WHERE task_leases.holder = EXCLUDED.holder OR task_leases.expires_at < now() "
                "RETURNING holder",
                {"name": name, "holder": holder, "lease": lease_s},
            ).fetchone()
            return row is not None

        return await self._db.write(take)

    async def release(self, name: str, holder: str) -> None:
        """``holder`` stops: another instance may take ``name`` at once."""
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE task_leases SET expires_at = '-infinity' WHERE name = %s AND holder = %s",
                (name, holder),
            )
        )

    async def holders(self) -> dict[str, str]:
        """The holder of every lease not expired (``sandcat admin``, tests)."""
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT name, holder FROM task_leases WHERE expires_at >= now()"
            ).fetchall()
        )
        return {str(name): str(holder) for name, holder in rows}
