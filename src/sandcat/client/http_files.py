"""Files over HTTP: uploads (raw or multipart), downloads, links, avatars, direct uploads.

`attachment` turns an upload into the body of the message that sends it
(SPEC.md §9, "File references"): the upload reply's ``content_type`` is the
message's ``mime``, its ``size`` the ``size``, and so on. The server's own
thumbnail of an image (``thumbnail: true``) is not a file of its own: it is
``GET /files/{file}/thumbnail``, so a message leaves ``thumb`` out for it;
``thumb`` names a separate image upload (a video's poster frame, say).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sandcat.protocol import Kind

from .http_transport import API_PREFIX, HttpTransport, _object

__all__ = [
    "AvatarSet",
    "DirectUpload",
    "FileInfo",
    "FileLinks",
    "FileList",
    "FileRoutes",
    "attachment",
]

#: Upload kind -> the message kind that sends it (SPEC.md §9).
MESSAGE_KINDS: Mapping[str, Kind] = {
    "image": Kind.IMAGE,
    "file": Kind.FILE,
    "voice": Kind.VOICE,
    "video": Kind.VIDEO,
}


def _opt_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInfo:
    """An upload (the API's ``File``): ``content_type`` was checked against the
    bytes; ``width``/``height``/``duration_ms`` where the server could read them;
    ``thumbnail``: ``GET /files/{id}/thumbnail`` serves a JPEG."""

    id: str
    kind: str
    content_type: str
    name: str
    size: int
    sha256: str
    created_at: int
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    thumbnail: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> FileInfo:
        return cls(
            id=str(body["id"]),
            kind=str(body["kind"]),
            content_type=str(body["content_type"]),
            name=str(body["name"]),
            size=int(body["size"]),
            sha256=str(body["sha256"]),
            created_at=int(body["created_at"]),
            width=_opt_int(body, "width"),
            height=_opt_int(body, "height"),
            duration_ms=_opt_int(body, "duration_ms"),
            thumbnail=bool(body.get("thumbnail", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileList:
    """Your uploads (newest 200 first) and your storage use."""

    files: Sequence[FileInfo]
    used_bytes: int
    quota_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FileLinks:
    """Signed download links (no bearer needed) valid until ``expires_at`` (ms)."""

    url: str
    expires_at: int
    thumbnail_url: str | None = None
    #: S3 only: a presigned storage URL.
    direct_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AvatarSet:
    """A new avatar: its id (public at ``/api/v1/avatars/{avatar}``) and upload."""

    avatar: str
    file: FileInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectUpload:
    """A reserved direct upload (S3): PUT the bytes to ``upload_url``, then complete it."""

    file: FileInfo
    upload_url: str
    expires_at: int


def attachment(
    file: FileInfo,
    *,
    kind: int | None = None,
    name: str | None = None,
    thumb: str | None = None,
    width: int | None = None,
    height: int | None = None,
    duration_ms: int | None = None,
) -> tuple[int, dict[str, object]]:
    """The ``(kind, body)`` of the message that sends upload ``file`` (SPEC.md §9).

    ``kind`` defaults to the message kind of the upload's kind (image → 2,
    file → 3, voice → 4, video → 5); any upload but an avatar may be sent as a
    file (3). ``width``, ``height`` and ``duration_ms`` fill in what the
    server could not read from the bytes; ``thumb`` is the id of a separate
    image upload to show as the preview.

    Raises:
        ValueError: the message kind needs a field neither the upload nor the
            arguments give (a video's duration, say).
    """
    chosen = int(kind if kind is not None else MESSAGE_KINDS.get(file.kind, Kind.FILE))
    body: dict[str, object] = {"file": file.id, "mime": file.content_type, "size": file.size}
    given = {
        "width": width if width is not None else file.width,
        "height": height if height is not None else file.height,
        "duration_ms": duration_ms if duration_ms is not None else file.duration_ms,
        "name": name or file.name or None,
        "thumb": thumb,
    }
    needed: dict[int, tuple[str, ...]] = {
        Kind.IMAGE: ("width", "height"),
        Kind.FILE: ("name",),
        Kind.VOICE: ("duration_ms",),
        Kind.VIDEO: ("duration_ms", "width", "height"),
    }
    optional: dict[int, tuple[str, ...]] = {Kind.IMAGE: ("thumb", "name"), Kind.VIDEO: ("thumb",)}
    if chosen not in needed:
        raise ValueError(f"kind {chosen}: not a file message kind (2-5)")
    for key in needed[chosen]:
        if given[key] is None:
            raise ValueError(f"{key}: required for kind {chosen}, not known from the upload")
        body[key] = given[key]
    for key in optional.get(chosen, ()):
        if given[key] is not None:
            body[key] = given[key]
    return chosen, body


def _content(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type}


class FileRoutes(HttpTransport):
    """The ``/files`` and avatar routes."""

    async def upload_file(
        self,
        token: str,
        data: bytes | AsyncIterable[bytes],
        *,
        content_type: str,
        kind: str = "file",
        name: str | None = None,
        multipart: bool = False,
    ) -> FileInfo:
        """Upload a file of ``kind`` (image, file, voice, video).

        The raw body is the default (an async iterable is sent chunked);
        ``multipart=True`` sends ``multipart/form-data`` instead (bytes only).
        ``content_type`` must be allowed for the kind and match the bytes (else
        415); over the kind's size limit or the quota: 413.
        """
        response = await self._upload(
            "POST", "/files", token, data, content_type, name, multipart, {"kind": kind}
        )
        return FileInfo.from_json(_object(response)["file"])

    async def files(self, token: str) -> FileList:
        """Your uploads (newest 200) and your quota."""
        reply = await self._request("GET", "/files", token=token)
        return FileList(
            files=tuple(FileInfo.from_json(f) for f in reply["files"]),
            used_bytes=int(reply["used_bytes"]),
            quota_bytes=int(reply["quota_bytes"]),
        )

    async def file(self, token: str, file_id: str) -> FileInfo:
        """An upload of yours, or one sent in a conversation of yours."""
        return FileInfo.from_json(
            (await self._request("GET", f"/files/{file_id}", token=token))["file"]
        )

    async def delete_file(self, token: str, file_id: str) -> None:
        """Delete an upload of yours."""
        await self._request("DELETE", f"/files/{file_id}", token=token)

    async def download(
        self, token: str, file_id: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        """The bytes of a file, or of bytes ``start`` … ``end`` (inclusive) of it."""
        headers = {}
        if start is not None or end is not None:
            headers["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        url = f"{API_PREFIX}/files/{file_id}/content"
        return (await self._send("GET", url, token=token, headers=headers)).content

    async def download_thumbnail(self, token: str, file_id: str) -> bytes:
        """The JPEG thumbnail of an image upload (``thumbnail: true``)."""
        url = f"{API_PREFIX}/files/{file_id}/thumbnail"
        return (await self._send("GET", url, token=token)).content

    async def link_file(self, token: str, file_id: str) -> FileLinks:
        """Short-lived signed download links; fetch them with `download_link`."""
        reply = await self._request("POST", f"/files/{file_id}/links", json={}, token=token)
        return FileLinks(
            url=str(reply["url"]),
            expires_at=int(reply["expires_at"]),
            thumbnail_url=None
            if reply.get("thumbnail_url") is None
            else str(reply["thumbnail_url"]),
            direct_url=None if reply.get("direct_url") is None else str(reply["direct_url"]),
        )

    async def download_link(self, url: str) -> bytes:
        """The bytes behind a signed link (`FileLinks.url` or ``thumbnail_url``), no token."""
        return (await self._send("GET", url)).content

    async def avatar(self, avatar_id: str) -> bytes:
        """An avatar's bytes (public)."""
        return (await self._send("GET", f"{API_PREFIX}/avatars/{avatar_id}")).content

    async def set_my_avatar(
        self, token: str, data: bytes, *, content_type: str, multipart: bool = False
    ) -> AvatarSet:
        """Upload an image and make it your avatar."""
        response = await self._upload(
            "PUT", "/users/me/avatar", token, data, content_type, None, multipart, {}
        )
        return _avatar_set(_object(response))

    async def set_group_avatar(
        self, token: str, group_id: str, data: bytes, *, content_type: str, multipart: bool = False
    ) -> AvatarSet:
        """Upload an image and make it the group's avatar (owner or admin)."""
        path = f"/groups/{group_id}/avatar"
        response = await self._upload("PUT", path, token, data, content_type, None, multipart, {})
        return _avatar_set(_object(response))

    async def begin_direct_upload(
        self,
        token: str,
        *,
        content_type: str,
        size: int,
        kind: str | None = None,
        name: str | None = None,
    ) -> DirectUpload:
        """S3 only: reserve an upload and get a presigned PUT URL for its bytes."""
        body: dict[str, object] = {"content_type": content_type, "size": size}
        if kind is not None:
            body["kind"] = kind
        if name is not None:
            body["name"] = name
        reply = await self._request("POST", "/files/direct", json=body, token=token)
        return DirectUpload(
            file=FileInfo.from_json(reply["file"]),
            upload_url=str(reply["upload_url"]),
            expires_at=int(reply["expires_at"]),
        )

    async def complete_direct_upload(self, token: str, file_id: str) -> FileInfo:
        """Check the bytes PUT to S3 (as an upload is checked) and make the file ready."""
        reply = await self._request("POST", f"/files/{file_id}/complete", json={}, token=token)
        return FileInfo.from_json(reply["file"])

    async def _upload(
        self,
        method: str,
        path: str,
        token: str,
        data: bytes | AsyncIterable[bytes],
        content_type: str,
        name: str | None,
        multipart: bool,
        query: dict[str, object | None],
    ) -> httpx.Response:
        url = API_PREFIX + path
        if not multipart:
            return await self._send(
                method,
                url,
                token=token,
                query={**query, "name": name},
                headers=_content(content_type),
                content=data,
            )
        if not isinstance(data, bytes):
            raise TypeError("a multipart upload takes bytes")
        part = (name or "upload", data, content_type)
        return await self._send(method, url, token=token, query=query, files={"file": part})


def _avatar_set(reply: Mapping[str, Any]) -> AvatarSet:
    return AvatarSet(avatar=str(reply["avatar"]), file=FileInfo.from_json(reply["file"]))
