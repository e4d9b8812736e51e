"""Files and directories only the server's user may read.

The data directory holds the database, uploads, the token key and (in the
embedded mail mode) mails with live reset codes: whatever the process umask,
what Sandcat creates there is 0700 (directories) and 0600 (files).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; a directory this call
    creates is 0700. An existing one is left as its operator made it."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, DIR_MODE)


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for ``open()``: a file it creates is 0600."""
    return os.open(path, flags, FILE_MODE)


def touch_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (before SQLite opens it:
    its WAL and shared-memory files copy the database file's mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
