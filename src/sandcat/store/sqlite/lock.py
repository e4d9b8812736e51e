"""One ``sandcat serve`` per SQLite database: an OS lock held for the server's life.

Two servers on one SQLite file would each keep their own in-memory state
(sequencer heads, recent acks, connected clients) over one database, and
hand out the same seq twice. ``serve_lock`` takes an exclusive ``flock`` on
``PATH.lock`` beside the database (not on the database file itself: closing
any descriptor of a file drops SQLite's own POSIX locks on it) and keeps it
until the server closes its stores; the kernel releases it if the process
dies, so a crash leaves nothing to clean up. Admin commands (``sandcat
migrate``, ``sandcat rotate-token-key``) do not take it: they run beside a
server as SQLite's own locking allows. PostgreSQL needs no such lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandcat.errors import LocalStoreUnavailable


def lock_path(database: Path) -> Path:
    return database.with_name(f"{database.name}.lock")


@contextmanager
def serve_lock(database: Path) -> Iterator[None]:
    """Hold the server lock of ``database``; ``LocalStoreUnavailable`` naming the file
    and the holder's pid if another process holds it."""
    path = lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise LocalStoreUnavailable(
                f"{database} is in use by another sandcat serve (pid {holder}, lock {path}): "
                "one server per SQLite database; stop it first, or use PostgreSQL to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
