"""Small real media files made on the fly for tests."""

from __future__ import annotations

import io
import os
import struct

from PIL import Image


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def noisy_png(side: int = 64) -> bytes:
    """A PNG that does not compress away: cutting its end cuts pixel data."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 10)).save(out, format="JPEG")
    return out.getvalue()


def gif_with_alpha() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (12, 12), (0, 0, 255, 128)).save(out, format="GIF")
    return out.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG that claims (and would decode to) a huge number of pixels."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG")
    return out.getvalue()


def wav(duration_ms: int = 1500, rate: int = 8000) -> bytes:
    frames = rate * duration_ms // 1000
    data = b"\x00\x00" * frames
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def ogg_opus(duration_ms: int = 2000) -> bytes:
    """Two Ogg pages: an OpusHead and a last page whose granule gives the length."""
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)

    def page(granule: int, payload: bytes, seq: int) -> bytes:
        return (
            b"OggS\x00\x02"
            + struct.pack("<qIIIB", granule, 1, seq, 0, 1)
            + bytes([len(payload)])
            + payload
        )

    return page(0, head, 0) + page(312 + 48 * duration_ms, b"\x00" * 10, 1)


def mp4(duration_ms: int = 3000) -> bytes:
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00"
    mvhd_body = bytes(4) + struct.pack(">IIII", 0, 0, 1000, duration_ms) + bytes(80)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    free = struct.pack(">I4s", 16, b"free") + bytes(8)
    return ftyp + free + moov


PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
