"""Default avatars: the pictures new accounts get, shipped with the server."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from importlib import resources
from typing import Final

from sandcat.errors import BadRequest
from sandcat.ids import is_id

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


#: An avatar is an upload id or an https URL, at most this long.
MAX_AVATAR = 512
_URL_CHARS = re.compile(r"[!#-;=?-\[\]_a-z~]+")


def avatar_ref(value: str, *, field: str = "avatar") -> str:
    """``value`` if it is empty, an upload id, or an ``https://host/...`` URL of
    printable ASCII without credentials; ``BadRequest`` naming ``field`` otherwise.

    Clients show avatars by fetching them: free text there could point a
    client at any scheme (``javascript:``, ``file:``) or smuggle markup."""
    if value == "" or is_id(value):
        return value
    if len(value) <= MAX_AVATAR and _URL_CHARS.fullmatch(value) and _https_url(value):
        return value
    raise BadRequest(
        f"{field}: must be an uploaded file id or an https:// URL of at most "
        f"{MAX_AVATAR} characters",
        field=field,
    )


def _https_url(value: str) -> bool:
    try:
        url = urllib.parse.urlsplit(value)
        # Both raise ValueError: an unbalanced "[" in the host, a port out of range.
        host, port = url.hostname, url.port
    except ValueError:
        return False
    return url.scheme == "https" and bool(host) and "@" not in url.netloc and port != 0
