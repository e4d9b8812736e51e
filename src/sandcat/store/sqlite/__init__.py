"""The embedded SQLite backend: one file in the data directory, WAL mode."""

from sandcat.store.sqlite.database import Database, open_database

__all__ = ["Database", "open_database"]
