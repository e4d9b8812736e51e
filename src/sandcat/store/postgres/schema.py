"""The PostgreSQL schema as numbered migrations, applied at startup and by ``sandcat migrate``.

Each migration is a file ``migrations/NNNN_name.sql``; the number is its
position. ``schema_migrations`` records each one applied. Every run takes a
transaction-scoped advisory lock first, so instances starting at the same
time apply the pending migrations once: the first holds the lock and applies
them, the others wait, then find nothing left to do. All pending migrations
commit together or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandcat.store.sql.migrations import load_migrations

if TYPE_CHECKING:
    from sandcat.store.postgres.database import Connection, Database

#: ``pg_advisory_xact_lock`` key of the migrator: "sandcat" as a bigint.
MIGRATION_LOCK = 0x73616E64636174


MIGRATIONS: tuple[tuple[str, str], ...] = load_migrations("sandcat.store.postgres")


def apply_migrations(conn: Connection) -> list[str]:
    """Apply the pending migrations in ``conn``'s open transaction; their names."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {version for (version,) in conn.execute("SELECT version FROM schema_migrations")}
    done: list[str] = []
    for number, (name, script) in enumerate(MIGRATIONS, start=1):
        if number in applied:
            continue
        conn.execute(script.encode())
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name)
        )
        done.append(name)
    return done


async def migrate(db: Database) -> list[str]:
    """Apply the pending migrations; returns the names of those applied now."""
    return await db.write(apply_migrations)
