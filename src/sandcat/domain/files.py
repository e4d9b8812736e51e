"""Uploads, downloads, avatars and their life cycle: the files use cases.

An upload is streamed to a spool file in the data directory while its size
(per-kind limit and the owner's quota) and its first bytes (against the
declared type) are checked, so a bad upload is refused as soon as it shows.
Then it is probed (image size and thumbnail, duration), its bytes go to the
blob store, and only then does its row turn ``ready``. Whatever fails on the
way, the row is condemned and the blobs removed (or left to the janitor if the
store is down): nothing half-written is ever visible.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import AsyncIterable, Awaitable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Final

import trio

from sandcat.blobs import BlobReader, BlobStore, DirectBlobStore
from sandcat.clock import Clock
from sandcat.config import FilesConfig
from sandcat.domain.avatars import DEFAULT_AVATARS, default_avatar_png
from sandcat.domain.media import AVATAR_TYPE, THUMB_TYPE, probe
from sandcat.domain.media_types import HEAD_BYTES, check_head, parse_declared
from sandcat.errors import BadRequest, Forbidden, NotFound, StoreUnavailable, TooLarge, Unavailable
from sandcat.ids import new_id
from sandcat.private_files import make_private_dir, private_opener
from sandcat.store.files import FileStore, QuotaExceeded, Upload

log = logging.getLogger(__name__)

KINDS: Final = ("image", "file", "voice", "video", "avatar")
#: Kinds whose probe decodes pixels (and so runs on the image limiter).
IMAGE_KINDS: Final = frozenset({"image", "avatar"})
#: Message kinds (SPEC.md §9) whose bodies refer to uploads, and the upload kinds they take.
MESSAGE_FILE_KINDS: Final[Mapping[int, frozenset[str]]] = {
    2: frozenset({"image"}),
    3: frozenset({"image", "file", "voice", "video"}),
    4: frozenset({"voice"}),
    5: frozenset({"video"}),
}
_SWEEP_BATCH = 500
#: Pending uploads older than this are abandoned (a crash mid-upload).
_PENDING_TTL_MS = 6 * 3600 * 1000
#: Deadline for cleaning up after a failed upload.
_CLEANUP_S = 30
_SPOOL_WRITE_BYTES = 1024 * 1024
_MAX_NAME = 255


def clean_name(name: str | None) -> str:
    """The client's file name, as display metadata only: its last path segment,
    without control characters, NFC, at most 255 characters."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in unicodedata.normalize("NFC", base) if ch.isprintable())
    text = text.strip().lstrip(".")
    return text[:_MAX_NAME]


class Files:
    def __init__(
        self,
        store: FileStore,
        blobs: BlobStore,
        *,
        config: FilesConfig,
        spool: Path,
        clock: Clock,
        direct: DirectBlobStore | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self._direct = direct
        self.config = config
        self._spool = spool
        self._clock = clock
        #: Image decodes take up to max_*_decode_bytes each: at most image_workers
        #: run at once (not trio's default 40 threads); the others queue here.
        self._image_work = trio.CapacityLimiter(config.image_workers)

    def _decode_bytes(self, kind: str) -> int:
        if kind == "avatar":
            return self.config.max_avatar_decode_bytes
        return self.config.max_image_decode_bytes

    def limit(self, kind: str) -> int:
        limit: int = getattr(self.config, f"max_{kind}_bytes")
        return limit

    @staticmethod
    def parse_kind(raw: str | None) -> str:
        kind = "file" if raw is None else raw
        if kind not in KINDS:
            raise BadRequest(f"kind: must be one of {', '.join(KINDS)}", field="kind")
        return kind

    async def prepare_spool(self) -> None:
        def prepare() -> None:
            make_private_dir(self._spool)
            for leftover in self._spool.iterdir():
                leftover.unlink(missing_ok=True)

        await trio.to_thread.run_sync(prepare)

    async def check_room(self, owner: str, kind: str, length: int | None) -> int:
        """Before reading a body: 413 if ``length`` is over the kind's limit or the
        owner's remaining quota. Returns how many bytes may still arrive."""
        limit = self.limit(kind)
        if length is not None and length > limit:
            raise TooLarge(f"a {kind} may be at most {limit} bytes")
        room = self.config.quota_bytes - await self.store.usage(owner)
        if length is not None and length > room:
            raise TooLarge("upload quota exceeded")
        return max(0, min(limit, room))

    async def upload(
        self,
        owner: str,
        *,
        kind: str,
        declared_type: str | None,
        name: str | None,
        length: int | None,
        chunks: AsyncIterable[bytes],
    ) -> Upload:
        """Store an upload from ``chunks``; 413, 415 or 503 as it goes. Returns it ready."""
        content_type = parse_declared(declared_type, kind)
        room = await self.check_room(owner, kind, length)
        upload = Upload(
            id=new_id(),
            owner=owner,
            kind=kind,
            content_type=content_type,
            name=clean_name(name),
            created_at=self._clock(),
        )
        await self.store.begin(upload)
        return await self.ingest(upload, chunks, room=room)

    async def ingest(
        self, upload: Upload, chunks: AsyncIterable[bytes], *, room: int, in_store: bool = False
    ) -> Upload:
        """Check, probe and store the bytes of the pending ``upload``, then mark it ready.

        ``in_store``: the bytes already are under ``upload.key`` (a direct upload to
        S3, read back from there) and only the thumbnail is written. On any failure
        the upload is abandoned: condemned and its blobs removed.
        """
        spooled = self._spool / upload.id
        content_type = upload.content_type
        try:
            size, digest = await self._receive(chunks, spooled, content_type, room, upload.kind)
            found = await trio.to_thread.run_sync(
                partial(
                    probe,
                    spooled,
                    upload.kind,
                    content_type,
                    max_pixels=self.config.max_image_pixels,
                    max_decode_bytes=self._decode_bytes(upload.kind),
                ),
                limiter=self._image_work if upload.kind in IMAGE_KINDS else None,
            )
            source: Path | bytes = spooled
            if found.replacement is not None:
                source = found.replacement
                size, digest = len(source), hashlib.sha256(source).hexdigest()
                content_type = found.replacement_type or content_type
            if not in_store:
                await self.blobs.put(upload.key, source, content_type=content_type)
            if found.thumbnail is not None:
                await self.blobs.put(upload.thumb_key, found.thumbnail, content_type=THUMB_TYPE)
            done = replace(
                upload,
                content_type=content_type,
                size=size,
                sha256=digest,
                width=found.width,
                height=found.height,
                duration_ms=found.duration_ms,
                has_thumb=found.thumbnail is not None,
                state="ready",
            )
            try:
                finished = await self.store.finish(done, quota_bytes=self.config.quota_bytes)
            except QuotaExceeded as exc:
                raise TooLarge("upload quota exceeded") from exc
            if finished.state != "ready":
                raise Unavailable("the upload was cancelled while it was stored")
            return finished
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_S):
                await self._abandon(upload)
            raise
        finally:
            spooled.unlink(missing_ok=True)

    async def _receive(
        self, chunks: AsyncIterable[bytes], path: Path, content_type: str, room: int, kind: str
    ) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        head = b""
        pending = bytearray()
        async with await trio.open_file(path, "xb", opener=private_opener) as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > room:
                    limit = self.limit(kind)
                    if size > limit:
                        raise TooLarge(f"a {kind} may be at most {limit} bytes")
                    raise TooLarge("upload quota exceeded")
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                    if len(head) == HEAD_BYTES:
                        check_head(content_type, head)
                digest.update(chunk)
                pending += chunk
                if len(pending) >= _SPOOL_WRITE_BYTES:
                    await out.write(bytes(pending))
                    pending.clear()
            if len(head) < HEAD_BYTES:
                check_head(content_type, head)
            await out.write(bytes(pending))
        return size, digest.hexdigest()

    async def _abandon(self, upload: Upload) -> None:
        """Make a failed upload invisible and remove what it wrote (see module doc)."""
        try:
            await self.store.condemn(upload.id, owner=None)
            await self._erase(upload)
        except StoreUnavailable as exc:
            log.warning("upload %s left for the janitor: %s", upload.id, exc)

    async def _erase(self, upload: Upload) -> None:
        """Delete a condemned upload's blobs, then its row."""
        await self.blobs.delete(upload.key)
        await self.blobs.delete(upload.thumb_key)
        await self.store.purge(upload.id)

    async def readable(self, user: str, file_id: str) -> Upload:
        """The upload if ``user`` may read it; otherwise 404, as if it did not exist."""
        if await self.store.visible_to(file_id, user):
            upload = await self.store.get(file_id)
            if upload is not None and upload.state == "ready":
                return upload
        raise NotFound("no such file")

    async def ready(self, file_id: str) -> Upload:
        upload = await self.store.get(file_id)
        if upload is None or upload.state != "ready":
            raise NotFound("no such file")
        return upload

    async def avatar(self, file_id: str) -> Upload:
        """A public avatar; 404 for anything that is not one."""
        upload = await self.ready(file_id)
        if upload.kind != "avatar":
            raise NotFound("no such avatar")
        return upload

    async def open(
        self, upload: Upload, *, thumbnail: bool = False, start: int = 0, end: int | None = None
    ) -> BlobReader:
        if thumbnail and not upload.has_thumb:
            raise NotFound("this file has no thumbnail")
        return await self.blobs.open(
            upload.thumb_key if thumbnail else upload.key, start=start, end=end
        )

    async def delete(self, user: str, file_id: str) -> None:
        """Delete the user's own upload (404 for others'); its messages keep the id."""
        upload = await self.store.condemn(file_id, owner=user)
        if upload is None or upload.state != "ready":
            raise NotFound("no such file")
        try:
            await self._erase(upload)
        except StoreUnavailable as exc:
            # Already invisible; the janitor finishes the job when the store is back.
            log.warning("blobs of deleted upload %s left for the janitor: %s", file_id, exc)

    async def attachments(self, user: str, kind: int, body: object) -> tuple[str, ...]:
        """Check the uploads a SEND of ``kind`` refers to; their ids.

        Each must be ready and the sender's own, or already visible to them in a
        conversation (a forward); its type and size must be what the body says.
        Raises ``BadRequest`` otherwise (unknown and foreign look the same).
        """
        allowed = MESSAGE_FILE_KINDS.get(kind)
        if allowed is None or not isinstance(body, dict):
            return ()
        ids = [body["file"]] + ([body["thumb"]] if "thumb" in body else [])
        found = {u.id: u for u in await self.store.attachable(ids, user)}
        main = found.get(body["file"])
        if main is None or main.kind not in allowed:
            raise BadRequest("body.file: no such upload", field="body")
        if main.content_type != body["mime"] or main.size != body["size"]:
            raise BadRequest("body.mime/size: do not match the upload", field="body")
        if "thumb" in body:
            thumb = found.get(body["thumb"])
            if thumb is None or thumb.kind != "image":
                raise BadRequest("body.thumb: no such image upload", field="body")
        return tuple(dict.fromkeys(ids))

    async def may_set_group_avatar(self, group: str, user: str) -> None:
        """Check before the upload: 404 unless a member, 403 unless owner or admin."""
        role = await self.store.group_role(group, user)
        if role is None:
            raise NotFound("no such group")
        if role not in {"owner", "admin"}:
            raise Forbidden("only the owner or an admin may change the group avatar")

    async def set_user_avatar(self, user: str, avatar: Upload) -> None:
        await self.use_avatar(
            avatar, self.store.set_user_avatar(user, avatar.id, now_ms=self._clock())
        )

    async def use_avatar(self, avatar: Upload, setting: Awaitable[str]) -> None:
        """Await ``setting``, which points a user or group at the new ``avatar`` and
        returns the previous one; erase the previous one (unless shipped). If the
        setting fails, the new avatar is abandoned and the error raised."""
        try:
            previous = await setting
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_S):
                await self._abandon(avatar)
            raise
        if previous and previous not in DEFAULT_AVATARS:
            old = await self.store.condemn(previous, owner=None)
            if old is not None:
                try:
                    await self._erase(old)
                except StoreUnavailable as exc:
                    log.warning("old avatar %s left for the janitor: %s", previous, exc)

    def direct_url(self, upload: Upload, disposition: str) -> str | None:
        """A presigned URL straight to the storage, when it is S3; else None."""
        if self._direct is None:
            return None
        return self._direct.presign_get(
            upload.key,
            expires_s=self.config.signed_url_ttl_s,
            content_type=upload.content_type,
            disposition=disposition,
        )

    async def sweep(self) -> int:
        """One janitor pass: condemn orphans, erase condemned uploads. How many went."""
        now = self._clock()
        await self.store.condemn_unreferenced(
            ready_before_ms=now - int(self.config.orphan_ttl_s * 1000),
            pending_before_ms=now - max(_PENDING_TTL_MS, int(self.config.orphan_ttl_s * 1000)),
            limit=_SWEEP_BATCH,
        )
        erased = 0
        for upload in await self.store.condemned(limit=_SWEEP_BATCH):
            await self._erase(upload)
            erased += 1
        return erased

    async def install_default_avatars(self) -> None:
        """Store the shipped avatars if they are missing (first start, or a new bucket)."""
        for file_id in DEFAULT_AVATARS:
            existing = await self.store.get(file_id)
            data = default_avatar_png(file_id)
            if existing is not None and await self.blobs.size(existing.key) == len(data):
                continue
            upload = Upload(
                id=file_id,
                owner="",
                kind="avatar",
                content_type=AVATAR_TYPE,
                name=f"{file_id}.png",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                state="ready",
                created_at=self._clock(),
                referenced_at=self._clock(),
            )
            await self.blobs.put(upload.key, data, content_type=AVATAR_TYPE)
            await self.store.install(upload)


async def run_janitor(files: Files, *, interval_s: float) -> None:
    """Sweep orphan uploads every ``interval_s`` until cancelled; a storage outage
    only postpones the work to the next pass."""
    while True:
        await trio.sleep(interval_s)
        try:
            erased = await files.sweep()
        except StoreUnavailable as exc:
            log.warning("file janitor pass failed, retrying later: %s", exc)
            continue
        if erased:
            log.info("file janitor removed %d uploads", erased)
