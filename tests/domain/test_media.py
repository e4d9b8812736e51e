"""Probing images with bounded memory: the decode limit, scaled JPEG decodes, reductions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from sandcat.domain.media import decode_bytes, probe
from sandcat.errors import TooLarge

_MIB = 1024 * 1024


def _write(tmp_path: Path, image: Image.Image, fmt: str, **options: object) -> Path:
    path = tmp_path / f"image.{fmt.lower()}"
    image.save(path, format=fmt, **options)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("P", 100), ("L", 100), ("I;16", 200), ("RGB", 400), ("RGBA", 800), ("LA", 800)],
)
def test_decode_bytes_counts_pixels_bytes_and_the_alpha_copy(mode: str, expected: int) -> None:
    assert decode_bytes((10, 10), mode) == expected


@pytest.mark.parametrize(("side", "allowed"), [(511, True), (512, True), (513, False)])
def test_an_image_over_the_decode_limit_is_refused_before_decoding(
    tmp_path: Path, side: int, allowed: bool
) -> None:
    # 512 x 512 RGBA resized through a copy: exactly 2 MiB.
    path = _write(tmp_path, Image.new("RGBA", (side, side)), "PNG")
    if allowed:
        found = probe(path, "image", "image/png", max_pixels=10**8, max_decode_bytes=2 * _MIB)
        assert (found.width, found.height) == (side, side)
    else:
        with pytest.raises(TooLarge, match="to decode"):
            probe(path, "image", "image/png", max_pixels=10**8, max_decode_bytes=2 * _MIB)


def test_a_jpeg_decodes_scaled_and_its_exif_rotation_still_applies(tmp_path: Path) -> None:
    # 4000 x 3000 RGB is 46 MiB at full scale; drafted to 1/4 it fits 4 MiB.
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show upright
    path = _write(tmp_path, Image.new("RGB", (4000, 3000), "red"), "JPEG", exif=exif)
    found = probe(path, "image", "image/jpeg", max_pixels=10**8, max_decode_bytes=4 * _MIB)
    assert (found.width, found.height) == (3000, 4000)
    assert found.thumbnail is not None
    with Image.open(io.BytesIO(found.thumbnail)) as thumb:
        assert thumb.size == (240, 320)


def test_palette_images_are_reduced_without_new_colours(tmp_path: Path) -> None:
    path = _write(tmp_path, Image.new("P", (3000, 1000), 3), "PNG")
    found = probe(path, "avatar", "image/png", max_pixels=10**8, max_decode_bytes=4 * _MIB)
    assert found.replacement is not None
    with Image.open(io.BytesIO(found.replacement)) as avatar:
        assert avatar.size == (256, 256)
