"""Direct uploads to S3: the client PUTs the bytes to a presigned URL, then says so.

``begin`` checks what the client announces (kind, type, size, quota) and
reserves a pending upload whose presigned PUT accepts exactly that many
bytes of that type (both are signed). ``complete`` reads the object back
once, through the same checks as a streamed upload (type sniffing, image
decoding and thumbnail, duration, sha256), and marks it ready. An upload
never completed is removed by the janitor with other abandoned pending ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandcat.blobs import DirectBlobStore
from sandcat.clock import Clock
from sandcat.domain.files import Files, clean_name
from sandcat.domain.media_types import parse_declared
from sandcat.errors import BadRequest, ClientError, Conflict, NotFound
from sandcat.ids import new_id
from sandcat.store.files import Upload


@dataclass(frozen=True, slots=True)
class DirectTicket:
    upload: Upload
    url: str
    expires_at: int


class DirectUploads:
    def __init__(self, files: Files, store: DirectBlobStore | None, *, clock: Clock) -> None:
        self._files = files
        self._store = store
        self._clock = clock

    def _direct(self) -> DirectBlobStore:
        if self._store is None:
            raise ClientError("direct uploads need S3 storage; upload through POST /files")
        return self._store

    async def begin(
        self, owner: str, *, kind: str, declared_type: str, name: str | None, size: int
    ) -> DirectTicket:
        store = self._direct()
        if kind == "avatar":
            raise BadRequest("kind: avatars are uploaded with PUT .../avatar", field="kind")
        content_type = parse_declared(declared_type, kind)
        if size < 0:
            raise BadRequest("size: must be a non-negative integer", field="size")
        await self._files.check_room(owner, kind, size)
        upload = Upload(
            id=new_id(),
            owner=owner,
            kind=kind,
            content_type=content_type,
            name=clean_name(name),
            size=size,
            created_at=self._clock(),
        )
        await self._files.store.begin(upload)
        ttl = self._files.config.signed_url_ttl_s
        url = store.presign_put(upload.key, expires_s=ttl, content_type=content_type, size=size)
        return DirectTicket(upload, url, self._clock() + ttl * 1000)

    async def complete(self, owner: str, file_id: str) -> Upload:
        self._direct()
        upload = await self._files.store.get(file_id)
        if upload is None or upload.owner != owner or upload.state == "deleting":
            raise NotFound("no such upload")
        if upload.state == "ready":
            return upload
        stored = await self._files.blobs.size(upload.key)
        if stored is None:
            raise Conflict("the bytes have not been uploaded yet")
        reader = await self._files.blobs.open(upload.key)
        try:
            return await self._files.ingest(upload, reader, room=upload.size, in_store=True)
        finally:
            await reader.aclose()
