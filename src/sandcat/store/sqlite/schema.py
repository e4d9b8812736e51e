"""The SQLite schema as numbered migrations, applied in order at startup.

Each migration is a file ``migrations/NNNN_name.sql``; the number is its
position. ``PRAGMA user_version`` records the last one applied, and each runs
in its own transaction, so a crash mid-way leaves the previous version.
"""

from __future__ import annotations

from importlib import resources


def _load() -> tuple[str, ...]:
    folder = resources.files("sandcat.store.sqlite").joinpath("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    for number, entry in enumerate(files, start=1):
        if not entry.name.startswith(f"{number:04d}_"):
            raise RuntimeError(f"migration {entry.name} is out of sequence: expected {number:04d}_")
    return tuple(entry.read_text(encoding="utf-8") for entry in files)


MIGRATIONS: tuple[str, ...] = _load()
