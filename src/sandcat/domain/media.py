"""Reading what an uploaded file is: image size and thumbnail, audio/video duration.

Runs in a worker thread on the spooled upload (blocking, CPU-bound). Images
are decoded by Pillow restricted to the one format the declared type names
(so a PNG upload can never reach, say, the EPS decoder), after two checks
from the header, before any pixel is decoded: the pixel count (decompression
bombs), and the memory the decode takes (``max_decode_bytes``: a 7000x7000
RGBA PNG of 208 KB decodes to 196 MB, and resizing an image with alpha
copies it once more). JPEGs are decoded scaled down (``draft``) to what the
thumbnail needs, so only their scaled raster counts. Every later step works
on a reduced copy, and the allocator's free memory goes back to the system
after each image (``release_memory``). Durations are read only where it is
cheap: WAV headers, the last Ogg page, an MP4 ``mvhd`` box; otherwise they
stay unknown.
"""

from __future__ import annotations

import ctypes
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps

from sandcat.domain.media_types import UnsupportedMediaType
from sandcat.errors import TooLarge

_PIL_FORMATS: Final = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
THUMB_TYPE: Final = "image/jpeg"
AVATAR_TYPE: Final = "image/png"
_THUMB_PIXELS: Final = 320
_AVATAR_PIXELS: Final = 256
#: Modes whose decoded pixels take 1 byte (Pillow keeps most others in 4, RGB too).
_ONE_BYTE_MODES: Final = frozenset({"1", "L", "P"})
#: Modes Pillow resizes through a premultiplied full-size copy.
_ALPHA_MODES: Final = frozenset({"LA", "RGBA", "PA"})
#: How far from the end of an Ogg file the last page is looked for.
_OGG_TAIL: Final = 65536


@dataclass(frozen=True, slots=True)
class Probe:
    """What was learned from a file. ``replacement`` is set when the stored bytes
    are a re-encoding (avatars), with its own type."""

    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    thumbnail: bytes | None = None
    replacement: bytes | None = None
    replacement_type: str | None = None


def probe(
    path: Path, kind: str, content_type: str, *, max_pixels: int, max_decode_bytes: int
) -> Probe:
    """Inspect the file at ``path`` (blocking). 415 for undecodable images, 413 for
    bombs and for images whose decode would take more than ``max_decode_bytes``."""
    if kind in {"image", "avatar"}:
        try:
            return _probe_image(
                path,
                content_type,
                max_pixels=max_pixels,
                max_decode_bytes=max_decode_bytes,
                avatar=kind == "avatar",
            )
        finally:
            release_memory()
    if kind in {"voice", "video"}:
        return Probe(duration_ms=_duration_ms(path, content_type))
    return Probe()


def decode_bytes(size: tuple[int, int], mode: str) -> int:
    """The memory Pillow takes to decode and then resize an image of ``size`` and ``mode``."""
    width, height = size
    per_pixel = 1 if mode in _ONE_BYTE_MODES else 2 if mode.startswith("I;16") else 4
    copies = 2 if mode in _ALPHA_MODES else 1
    return width * height * per_pixel * copies


def _probe_image(
    path: Path, content_type: str, *, max_pixels: int, max_decode_bytes: int, avatar: bool
) -> Probe:
    fmt = _PIL_FORMATS[content_type]
    side = _AVATAR_PIXELS if avatar else _THUMB_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[fmt]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise TooLarge(f"image of {width}x{height} pixels is over {max_pixels}")
                image.seek(0)
                # JPEG only: decode at 1/2..1/8 scale, still twice the output size.
                image.draft("RGB", (2 * side, 2 * side))
                cost = decode_bytes(image.size, image.mode)
                if cost > max_decode_bytes:
                    raise TooLarge(
                        f"image of {width}x{height} pixels ({image.mode}) takes {cost} bytes "
                        f"to decode, over {max_decode_bytes}"
                    )
                image.load()
                orientation = image.getexif().get(_ORIENTATION, 1)
                small = _reduced(image, side)
            upright = _transposed(small, orientation)
            if avatar:
                data = _encode(ImageOps.fit(upright.convert("RGBA"), (side, side)), "PNG")
                return Probe(
                    width=side, height=side, replacement=data, replacement_type=AVATAR_TYPE
                )
            if orientation in _SIDEWAYS:
                width, height = height, width
            upright.thumbnail((side, side))
            thumb = _encode(_flatten(upright), "JPEG")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"image is too large to decode: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        # Pillow reports undecodable and truncated files through these.
        raise UnsupportedMediaType(f"not a valid {content_type} image") from exc
    return Probe(width=width, height=height, thumbnail=thumb)


#: The EXIF orientation tag, and the orientations that swap width and height.
_ORIENTATION: Final = 0x0112
_SIDEWAYS: Final = frozenset({5, 6, 7, 8})
_TRANSPOSES: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _reduced(image: Image.Image, side: int) -> Image.Image:
    """A copy whose shorter side is at least ``2 * side`` (the image itself if small)."""
    factor = min(image.size) // (2 * side)
    if factor < 2:
        return image.copy()
    # Palette and bilevel images are reduced as pixels (no new colours); others averaged.
    nearest = image.mode in {"1", "P"}
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BOX
    return image.resize((image.width // factor, image.height // factor), resample)


def _transposed(image: Image.Image, orientation: object) -> Image.Image:
    method = _TRANSPOSES.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white: JPEG has no alpha, and palette images need converting."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, (255, 255, 255))
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - not glibc (musl, macOS): nothing to trim
        return None


_LIBC: Final = _load_libc()


def release_memory() -> None:
    """Give the allocator's free memory back to the system (glibc ``malloc_trim``).

    A decoded image is freed at once, but glibc keeps big freed blocks in the
    worker thread's arena; without this an instance's RSS stays at the high
    mark of its largest images for good.
    """
    if _LIBC is not None:  # pragma: no branch - glibc on every supported system
        _LIBC.malloc_trim(0)


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    return out.getvalue()


def _duration_ms(path: Path, content_type: str) -> int | None:
    try:
        with open(path, "rb") as handle:
            if content_type in {"audio/wav", "audio/x-wav"}:
                return _wav_duration(handle)
            if content_type in {"audio/ogg", "audio/opus", "video/ogg"}:
                return _ogg_duration(handle)
            if content_type in {"audio/mp4", "audio/x-m4a", "video/mp4", "video/quicktime"}:
                return _mp4_duration(handle)
    except (OSError, struct.error, ValueError, ZeroDivisionError):
        return None  # malformed headers: the duration stays unknown, the file is kept
    return None


def _wav_duration(handle: io.BufferedReader) -> int | None:
    handle.seek(12)
    byte_rate = None
    while chunk := handle.read(8):
        if len(chunk) < 8:
            return None
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name == b"fmt ":
            fmt = handle.read(size)
            byte_rate = struct.unpack("<I", fmt[8:12])[0]
            continue
        if name == b"data" and byte_rate:
            return int(size * 1000 // byte_rate)
        handle.seek(size + (size & 1), io.SEEK_CUR)
    return None


def _ogg_duration(handle: io.BufferedReader) -> int | None:
    first = handle.read(_OGG_TAIL)
    if b"OpusHead" in first:
        at = first.index(b"OpusHead")
        pre_skip = struct.unpack("<H", first[at + 10 : at + 12])[0]
        rate, skip = 48000, pre_skip
    elif b"\x01vorbis" in first:
        at = first.index(b"\x01vorbis")
        rate, skip = struct.unpack("<I", first[at + 12 : at + 16])[0], 0
    else:
        return None
    handle.seek(0, io.SEEK_END)
    end = handle.tell()
    handle.seek(max(0, end - _OGG_TAIL))
    tail = handle.read()
    last = tail.rfind(b"OggS")
    if last < 0 or len(tail) < last + 14:
        return None
    granule = struct.unpack("<q", tail[last + 6 : last + 14])[0]
    return int(max(0, granule - skip) * 1000 // rate)


def _mp4_duration(handle: io.BufferedReader) -> int | None:
    """Walk the top-level boxes to ``moov`` and read ``mvhd`` (ISO/IEC 14496-12 §8.2.2)."""
    while header := handle.read(8):
        if len(header) < 8:
            return None
        size, name = struct.unpack(">I4s", header)
        if size == 1:
            size = struct.unpack(">Q", handle.read(8))[0] - 8
        if name == b"moov":
            body = handle.read(min(size - 8, 1 << 20))
            at = body.find(b"mvhd")
            if at < 0:
                return None
            version = body[at + 4]
            if version == 1:
                scale, duration = struct.unpack(">IQ", body[at + 24 : at + 36])
            else:
                scale, duration = struct.unpack(">II", body[at + 16 : at + 24])
            return int(duration * 1000 // scale)
        if size < 8:
            return None
        handle.seek(size - 8, io.SEEK_CUR)
    return None
