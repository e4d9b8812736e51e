"""Default avatars: the pictures new accounts get, shipped with the server."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Final

#: Upload ids of the shipped avatars (stored at startup if missing).
DEFAULT_AVATARS: Final = ("default-avatar-1", "default-avatar-2", "default-avatar-3")


def default_avatar(user_id: str) -> str:
    """A default avatar for a new account, picked by its id (stable, spread evenly)."""
    digest = hashlib.sha256(user_id.encode()).digest()
    return DEFAULT_AVATARS[digest[0] % len(DEFAULT_AVATARS)]


def default_avatar_png(file_id: str) -> bytes:
    """The PNG of a shipped avatar."""
    number = DEFAULT_AVATARS.index(file_id) + 1
    folder = resources.files("sandcat.domain").joinpath("default_avatars")
    return folder.joinpath(f"avatar{number}.png").read_bytes()
