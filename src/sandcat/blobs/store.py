"""The blob store interface: opaque objects under server-chosen keys.

Sandcat keeps file *metadata* (owner, type, size, references) in its
relational store and only the bytes here. Two implementations pass the same
conformance suite (tests/blobs): ``LocalBlobStore`` (a directory, the embedded
default) and ``S3BlobStore`` (any S3-compatible service).

The contract every implementation keeps:

- ``put`` is atomic: once it returns, the whole object is readable; if it
  raises, no object (and no part of one) is visible under the key.
- Driver failures leave as ``StoreUnavailable`` (the API answers 503); a
  missing object is ``BlobNotFound``; nothing else escapes.
- Keys are made by the server (``[A-Za-z0-9_./-]``, no ``..``); a client's file
  name never becomes part of one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from sandcat.errors import NotFound

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_./-]{0,255}")


class BlobNotFound(NotFound):
    """No object under that key."""


def check_key(key: str) -> str:
    """``key`` if it is a valid server key; ``ValueError`` otherwise."""
    if not _KEY.fullmatch(key) or ".." in key or "//" in key or key.endswith("/"):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobReader(Protocol):
    """The bytes of one object (or of a range of it), read in chunks."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None:
        """Release the underlying file or connection; idempotent."""


class BlobStore(Protocol):
    async def put(self, key: str, source: Path | bytes, *, content_type: str) -> None:
        """Store ``source`` (a file's contents, or bytes) under ``key``, replacing it atomically."""

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> BlobReader:
        """A reader of bytes ``start`` up to (excluding) ``end`` (the object's end if None).

        Raises ``BlobNotFound`` before any byte is read if there is no such object.
        """

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if there is none."""

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""


class DirectBlobStore(BlobStore, Protocol):
    """A store clients can reach themselves (S3): presigned URLs move the bytes."""

    def presign_get(
        self, key: str, *, expires_s: int, content_type: str, disposition: str
    ) -> str: ...

    def presign_put(self, key: str, *, expires_s: int, content_type: str, size: int) -> str:
        """A URL that accepts one PUT of exactly ``size`` bytes of ``content_type``."""
