"""Backups of an embedded deployment: ``sandcat backup``, ``restore`` and ``check``.

``backup DEST`` takes a consistent snapshot of the SQLite database through
SQLite's online backup API (one step, under one read transaction: WAL lets the
running server keep writing meanwhile), then copies the local blob folder. Blobs
are copied *after* the snapshot: a file a snapshotted message refers to was
stored before that message was committed, so it is in the copy; blobs newer
than the snapshot are copied too and are harmless (the janitor removes
unreferenced uploads).

``restore SRC`` puts a backup into an empty data directory. ``check`` verifies
a deployment (a restored one, typically): the schema version, seqs contiguous
per conversation, and every blob a message refers to present (in the local
folder or in S3), for SQLite and for PostgreSQL alike.

PostgreSQL and S3 are backed up with their own tools (README.md, "Operating
Sandcat"): ``backup`` and ``restore`` refuse them with a line saying so.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from sandcat.config import Config
from sandcat.errors import ConfigError
from sandcat.private_files import make_private_dir, private_opener, touch_private
from sandcat.store.backends import is_postgres, sqlite_path
from sandcat.store.sqlite.schema import MIGRATIONS

DATABASE = "sandcat.db"
MANIFEST = "backup.json"
#: The blob folder's objects (``LocalBlobStore``): key ``u/ID`` is ``objects/u/ID``.
OBJECTS = Path("blobs") / "objects"


class BackupError(Exception):
    """A backup, restore or check cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    path: Path
    schema_version: int
    messages: int
    blobs: int


@dataclass(slots=True)
class Report:
    """What ``check`` found; ``ok`` when ``problems`` is empty."""

    schema_version: int = 0
    conversations: int = 0
    messages: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)
    #: (file id, has a thumbnail) of every upload a message refers to.
    referenced: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _embedded(config: Config, command: str) -> Path:
    if is_postgres(config):
        raise ConfigError(
            "backends.database_url",
            "postgresql://...",
            f"sandcat {command} handles the embedded SQLite database only; back PostgreSQL "
            "up with pg_dump or pg_basebackup (README.md, 'Operating Sandcat')",
        )
    return sqlite_path(config)


def _empty_or_missing(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def backup(config: Config, dest: Path) -> Snapshot:
    """Snapshot the database and copy the local blobs into ``dest`` (new or empty)."""
    source = _embedded(config, "backup")
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if not _empty_or_missing(dest):
        raise BackupError(f"{dest} is not empty: back up into a new folder")
    make_private_dir(dest)
    target = dest / DATABASE
    touch_private(target)  # 0600 like the database it copies, whatever the umask
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        # pages=-1: the whole database in one step, i.e. one consistent snapshot.
        src.backup(dst, pages=-1)
        version = int(dst.execute("PRAGMA user_version").fetchone()[0])
        messages = int(dst.execute("SELECT count(*) FROM messages").fetchone()[0])
    copied = 0
    if not config.backends.s3_url:
        blobs = config.data_path / OBJECTS
        if blobs.is_dir():
            shutil.copytree(blobs, dest / OBJECTS, dirs_exist_ok=True)
            copied = sum(1 for path in (dest / OBJECTS).rglob("*") if path.is_file())
    manifest = {
        "format": 1,
        "taken_at_ms": int(time.time() * 1000),
        "schema_version": version,
        "messages": messages,
        "blobs": copied,
        "blobs_in_s3": bool(config.backends.s3_url),
    }
    with open(dest / MANIFEST, "w", opener=private_opener) as out:
        out.write(json.dumps(manifest, indent=2) + "\n")
    return Snapshot(dest, version, messages, copied)


def restore(config: Config, source: Path) -> Path:
    """Copy the backup in ``source`` into the configured, empty, data directory."""
    target = _embedded(config, "restore")
    if not (source / MANIFEST).is_file() or not (source / DATABASE).is_file():
        raise BackupError(f"{source} is not a sandcat backup (no {MANIFEST} and {DATABASE})")
    if target.exists():
        raise BackupError(f"{target} exists: restore into an empty data directory")
    make_private_dir(target.parent)
    touch_private(target)  # copyfile keeps the mode of the file it writes into
    shutil.copyfile(source / DATABASE, target)
    if (source / OBJECTS).is_dir() and not config.backends.s3_url:
        shutil.copytree(source / OBJECTS, config.data_path / OBJECTS, dirs_exist_ok=True)
    return target


def check(config: Config) -> Report:
    """Verify the configured deployment (see the module's docstring): the embedded
    SQLite file and its local blobs, or a PostgreSQL database and the configured
    blob store (local or S3)."""
    if is_postgres(config):
        return trio.run(_check_postgres, config)
    path = sqlite_path(config)
    if not path.is_file():
        raise BackupError(f"no database at {path}")
    report = Report()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        _read_integrity(report, db, int(db.execute("PRAGMA user_version").fetchone()[0]))
    if config.backends.s3_url:
        trio.run(_check_blobs, config, report)
    else:
        objects = config.data_path / OBJECTS
        for file_id, has_thumb in report.referenced:
            if not (objects / "u" / file_id).is_file():
                report.problems.append(f"file {file_id}: its blob u/{file_id} is missing")
            if has_thumb and not (objects / "u" / f"{file_id}.thumb").is_file():
                report.problems.append(f"file {file_id}: its thumbnail is missing")
    return report


def _read_integrity(report: Report, db: Any, version: int, expected: int = 0) -> None:
    """Fill ``report`` from one connection (sqlite3 or psycopg: the statements take
    no parameters, so both run them as written)."""
    expected = expected or len(MIGRATIONS)
    report.schema_version = version
    if version != expected:
        report.problems.append(
            f"schema version {version}, this sandcat expects {expected} (run sandcat migrate)"
        )
    rows = db.execute(
        "SELECT cid, min(seq), max(seq), count(*) FROM messages GROUP BY cid ORDER BY cid"
    ).fetchall()
    for cid, low, high, count in rows:
        report.conversations += 1
        report.messages += count
        if high - low + 1 != count:
            report.problems.append(
                f"conversation {cid}: seqs {low}..{high} but {count} messages (a hole)"
            )
    report.referenced = [
        (str(file_id), bool(has_thumb))
        for file_id, has_thumb in db.execute(
            "SELECT DISTINCT u.id, u.has_thumb FROM message_files AS f "
            "JOIN uploads AS u ON u.id = f.file_id ORDER BY u.id"
        ).fetchall()
    ]
    missing_rows = db.execute(
        "SELECT DISTINCT f.file_id FROM message_files AS f "
        "LEFT JOIN uploads AS u ON u.id = f.file_id WHERE u.id IS NULL ORDER BY f.file_id"
    ).fetchall()
    for (file_id,) in missing_rows:
        report.problems.append(f"file {file_id}: sent in a message but not in uploads")
    report.files = len(report.referenced)


async def _check_postgres(config: Config) -> Report:
    from sandcat.store.postgres.database import Database
    from sandcat.store.postgres.schema import MIGRATIONS as POSTGRES_MIGRATIONS

    report = Report()

    def read(conn: Any) -> None:
        (version,) = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ).fetchone()
        _read_integrity(report, conn, int(version), len(POSTGRES_MIGRATIONS))

    db = Database(
        config.backends.database_url, pool_size=1, timeout_s=config.backends.postgres_timeout_s
    )
    try:
        await db.read(read)
    finally:
        await db.aclose()
    await _check_blobs(config, report)
    return report


async def _check_blobs(config: Config, report: Report) -> None:
    """Every referenced blob (and thumbnail) in the configured blob store."""
    from sandcat.services import open_blob_store

    blobs, _ = await open_blob_store(config)
    for file_id, has_thumb in report.referenced:
        if await blobs.size(f"u/{file_id}") is None:
            report.problems.append(f"file {file_id}: its blob u/{file_id} is missing")
        if has_thumb and await blobs.size(f"u/{file_id}.thumb") is None:
            report.problems.append(f"file {file_id}: its thumbnail is missing")
