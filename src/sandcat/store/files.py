"""The files aggregate: upload metadata, who may see an upload, avatars.

The bytes are in a blob store (``sandcat.blobs``); this is everything else.
An upload is ``pending`` while its bytes travel, ``ready`` once stored, and
``deleting`` from the moment it is condemned until its blobs are gone, so a
half-written or half-deleted upload is never visible: only ``ready`` rows can
be read, sent or shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

State = Literal["pending", "ready", "deleting"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    id: str
    owner: str
    kind: str
    content_type: str
    name: str = ""
    size: int = 0
    sha256: str = ""
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    has_thumb: bool = False
    state: State = "pending"
    created_at: int
    referenced_at: int | None = None

    @property
    def key(self) -> str:
        """The blob key of the bytes (made from the id only, never the name)."""
        return f"u/{self.id}"

    @property
    def thumb_key(self) -> str:
        return f"u/{self.id}.thumb"


class QuotaExceeded(Exception):
    """Finishing the upload would put its owner over quota."""


class UploadStore(Protocol):
    async def begin(self, upload: Upload) -> None:
        """Insert a ``pending`` upload."""

    async def finish(self, upload: Upload, *, quota_bytes: int) -> Upload:
        """Turn the pending row into ``upload`` (state ``ready``) if the owner's ready
        uploads plus this one fit ``quota_bytes``; ``QuotaExceeded`` otherwise."""

    async def get(self, file_id: str) -> Upload | None:
        """The upload in any state, or None."""

    async def usage(self, owner: str) -> int:
        """Bytes of the owner's pending and ready uploads."""

    async def mine(self, owner: str, *, limit: int) -> list[Upload]:
        """The owner's ready uploads, newest first."""


class UploadAccess(Protocol):
    async def visible_to(self, file_id: str, user: str) -> bool:
        """True if ``user`` uploaded it or is a member of a conversation it was sent in."""

    async def attachable(self, file_ids: list[str], user: str) -> list[Upload]:
        """The ready uploads among ``file_ids`` that ``user`` may put in a message:
        their own, or ones they can see in a conversation (forwards)."""


class UploadLifecycle(Protocol):
    async def condemn(self, file_id: str, *, owner: str | None) -> Upload | None:
        """Mark it ``deleting`` (if ``owner`` is given, only if it is theirs) and drop
        its attachment rows; the upload as it was, or None if there was none."""

    async def condemn_unreferenced(
        self, *, ready_before_ms: int, pending_before_ms: int, limit: int
    ) -> list[Upload]:
        """Condemn never-referenced ready uploads created before ``ready_before_ms`` and
        pending ones (abandoned by a crash) created before ``pending_before_ms``."""

    async def condemned(self, *, limit: int) -> list[Upload]:
        """Uploads in state ``deleting`` (their blobs may still exist)."""

    async def purge(self, file_id: str) -> None:
        """Remove the row of a condemned upload whose blobs are gone."""


class AvatarStore(Protocol):
    async def set_user_avatar(self, user: str, file_id: str, *, now_ms: int) -> str:
        """Point the user's avatar at a ready upload; returns the previous avatar id."""

    async def group_role(self, group: str, user: str) -> str | None:
        """The user's role in a live group, or None if not a member (or no group)."""

    async def install(self, upload: Upload) -> None:
        """Insert or replace a ready upload the server ships (a default avatar)."""


class FileStore(UploadStore, UploadAccess, UploadLifecycle, AvatarStore, Protocol):
    """Everything the files use cases need."""
