"""Each engine's migrations: files ``migrations/NNNN_name.sql`` in its package.

The number is the file's position: a gap or a repeat (two branches adding the
same number) fails at import, before any schema is touched. The scripts
differ per engine (partitions, ``timestamptz``, arrays); how they are applied
is each engine's (``store.sqlite.database``, ``store.postgres.schema``).
"""

from __future__ import annotations

from importlib import resources


def load_migrations(package: str) -> tuple[tuple[str, str], ...]:
    """``package``'s migrations in order: (file name, SQL script)."""
    folder = resources.files(package).joinpath("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    for number, entry in enumerate(files, start=1):
        if not entry.name.startswith(f"{number:04d}_"):
            raise RuntimeError(f"migration {entry.name} is out of sequence: expected {number:04d}_")
    return tuple((entry.name, entry.read_text(encoding="utf-8")) for entry in files)
