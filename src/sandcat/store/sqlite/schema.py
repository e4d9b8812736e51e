"""The SQLite schema as numbered migrations, applied in order at startup.

Each migration is a file ``migrations/NNNN_name.sql``; the number is its
position. ``PRAGMA user_version`` records the last one applied, and each runs
in its own transaction, so a crash mid-way leaves the previous version.
"""

from __future__ import annotations

from sandcat.store.sql.migrations import load_migrations

MIGRATIONS: tuple[str, ...] = tuple(script for _, script in load_migrations("sandcat.store.sqlite"))
