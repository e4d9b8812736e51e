"""Sending stored files: Range requests, validators and safe headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from quart import Response, request

from sandcat.blobs import BlobReader
from sandcat.domain.files import Files
from sandcat.domain.media import THUMB_TYPE
from sandcat.domain.media_types import IMAGE_TYPES
from sandcat.store.files import Upload

_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


def content_disposition(upload: Upload, *, inline: bool) -> str:
    """RFC 6266: an ASCII fallback name and the real one as RFC 5987 UTF-8."""
    name = upload.name or upload.id
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """A single ``bytes=`` range as [start, end); None for the whole file (no or a
    multi-range header); False when it cannot be satisfied."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # multiple or unknown ranges: RFC 9110 lets us send it all
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return False
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if start >= size or start >= end:
        return False
    return start, end


async def _stream(reader: BlobReader) -> AsyncIterator[bytes]:
    try:
        async for chunk in reader:
            yield chunk
    finally:
        await reader.aclose()


async def send_upload(
    files: Files,
    upload: Upload,
    *,
    thumbnail: bool = False,
    public: bool = False,
) -> Response:
    """The bytes of ``upload`` (or its thumbnail) with Range, ETag and caching headers."""
    content_type = THUMB_TYPE if thumbnail else upload.content_type
    etag = f'"{upload.sha256[:32]}{"-t" if thumbnail else ""}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Uploads never change: a new file is a new id.
        "Cache-Control": f"{'public' if public else 'private'}, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Content-Disposition": content_disposition(
            upload, inline=thumbnail or content_type in IMAGE_TYPES
        ),
    }
    if etag in request.headers.get("If-None-Match", ""):
        return Response(b"", status=304, headers=headers)
    if thumbnail:
        reader = await files.open(upload, thumbnail=True)
        size = None
        status = 200
    else:
        size = upload.size
        wanted = _range(request.headers.get("Range"), size)
        if request.headers.get("If-Range", etag) != etag:
            wanted = None
        if wanted is False:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(b"", status=416, headers=headers)
        start, end = wanted if isinstance(wanted, tuple) else (0, size)
        reader = await files.open(upload, start=start, end=end)
        status = 206 if isinstance(wanted, tuple) else 200
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
    response = Response(_stream(reader), status=status, headers=headers, content_type=content_type)
    response.timeout = files.config.transfer_timeout_s
    return response
