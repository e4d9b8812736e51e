"""Media types: which ones each upload kind takes, and checking bytes against them.

A declared type is trusted only as far as the bytes agree: every type with a
known signature (magic bytes) must start with it, text must contain no NUL
byte, and images are further decoded by ``sandcat.domain.media``. Types with
no known signature are accepted for plain files (kind ``file``) only; those
are always served as attachments with ``nosniff``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from sandcat.errors import ClientError

#: Bytes of the start of a file that sniffing looks at.
HEAD_BYTES: Final = 4096

_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")


class UnsupportedMediaType(ClientError):
    """415: the type is missing, malformed, not allowed here, or not what the bytes are."""

    http_status = 415


def _prefix(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda head: any(head.startswith(magic) for magic in magics)


def _riff(form: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _ftyp(head: bytes) -> bool:
    return head[4:8] == b"ftyp"


def _mpeg_audio(head: bytes) -> bool:
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


_ZIP = _prefix(b"PK\x03\x04", b"PK\x05\x06")
_OGG = _prefix(b"OggS")
_EBML = _prefix(b"\x1a\x45\xdf\xa3")

#: type -> does the head of the file look like it?
SIGNATURES: Final[Mapping[str, Callable[[bytes], bool]]] = {
    "image/png": _prefix(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": _prefix(b"\xff\xd8\xff"),
    "image/gif": _prefix(b"GIF87a", b"GIF89a"),
    "image/webp": _riff(b"WEBP"),
    "application/pdf": _prefix(b"%PDF-"),
    "application/zip": _ZIP,
    "application/gzip": _prefix(b"\x1f\x8b"),
    "application/epub+zip": _ZIP,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _ZIP,
    "application/vnd.oasis.opendocument.text": _ZIP,
    "audio/ogg": _OGG,
    "audio/opus": _OGG,
    "video/ogg": _OGG,
    "audio/webm": _EBML,
    "video/webm": _EBML,
    "audio/mp4": _ftyp,
    "audio/x-m4a": _ftyp,
    "video/mp4": _ftyp,
    "video/quicktime": _ftyp,
    "audio/mpeg": _mpeg_audio,
    "audio/aac": _prefix(b"\xff\xf1", b"\xff\xf9"),
    "audio/wav": _riff(b"WAVE"),
    "audio/x-wav": _riff(b"WAVE"),
    "text/plain": _text,
    "text/csv": _text,
    "text/markdown": _text,
    "application/json": _text,
}

IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

#: kind -> the types it takes (None: any well-formed type).
KIND_TYPES: Final[Mapping[str, frozenset[str] | None]] = {
    "image": IMAGE_TYPES,
    "avatar": IMAGE_TYPES,
    "voice": frozenset(
        {"audio/ogg", "audio/opus", "audio/webm", "audio/mpeg", "audio/mp4", "audio/aac"}
        | {"audio/wav", "audio/x-wav", "audio/x-m4a"}
    ),
    "video": frozenset({"video/mp4", "video/webm", "video/quicktime", "video/ogg"}),
    "file": None,
}


def parse_declared(raw: str | None, kind: str) -> str:
    """The bare, lower-case type of a Content-Type value, checked against ``kind``."""
    if not raw:
        raise UnsupportedMediaType("a Content-Type is required")
    declared = raw.split(";", 1)[0].strip().lower()
    if not _TYPE.fullmatch(declared) or declared in {"multipart/form-data"}:
        raise UnsupportedMediaType(f"Content-Type {declared[:80]!r} is not a media type")
    allowed = KIND_TYPES[kind]
    if allowed is not None and declared not in allowed:
        raise UnsupportedMediaType(
            f"a {kind} must be one of {', '.join(sorted(allowed))}, not {declared}"
        )
    return declared


def check_head(declared: str, head: bytes) -> None:
    """Refuse (415) bytes that do not start the way ``declared`` files do."""
    looks_like = SIGNATURES.get(declared)
    if looks_like is not None and not looks_like(head):
        raise UnsupportedMediaType(f"the bytes are not {declared}")
