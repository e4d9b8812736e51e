"""Image uploads cost bounded memory (issue 12, item 2).

The attack: a 7000x7000 RGBA PNG of ~208 KB (under the 50 M pixel limit) sent
as an avatar decoded to ~480 MB of RSS, and concurrent uploads added that
each, not given back. Now the decode's memory is checked from the header
before any pixel is decoded, image work runs on a small limiter, and the
allocator's free memory is returned after each image.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import trio
from PIL import Image

from tests.e2e.process import ServeProcess
from tests.files.scene import upload
from tests.scene import Account
from tests.security.proc_stats import (
    attacked_server,
    http_api,
    peak_rss_mib,
    reset_peak,
    rss_mib,
)

pytestmark = pytest.mark.slow

#: The issue's pass figure: peak RSS growth per upload.
MAX_GROWTH_MIB = 150
#: A control request's round trip while images are being decoded.
MAX_CONTROL_S = 2.0


def _png(side: int) -> bytes:
    """An RGBA PNG of side x side that compresses to almost nothing."""
    image = Image.new("RGBA", (side, side), (10, 200, 30, 128))
    for x in range(0, side, 50):
        image.putpixel((x, x), (255, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _png(7000)


@pytest.fixture(scope="module")
def large() -> bytes:
    """Just inside the image decode limit (3400^2 RGBA, resized through a copy: 88 MiB)."""
    return _png(3400)


async def _upload(served: ServeProcess, who: Account, data: bytes, kind: str) -> int:
    async with http_api(served) as api:
        if kind == "avatar":
            headers = {**api.auth(who), "Content-Type": "image/png"}
            reply = await api.http.put("/api/v1/users/me/avatar", content=data, headers=headers)
        else:
            reply = await upload(api, who, data, "image/png", kind=kind)
        return reply.status_code


async def test_avatar_bomb_is_refused_before_decoding(tmp_path: Path, bomb: bytes) -> None:
    assert len(bomb) < 250_000
    async with attacked_server(tmp_path) as served:
        async with http_api(served) as api:
            alice = await api.account()
        pid = served.process.pid
        reset_peak(pid)
        before = rss_mib(pid)
        status = await _upload(served, alice, bomb, "avatar")
        growth = peak_rss_mib(pid) - before
        print(f"avatar bomb: HTTP {status}, peak RSS +{growth:.0f} MiB")
        assert status == 413
        assert growth < MAX_GROWTH_MIB


async def test_concurrent_large_images_queue_and_memory_comes_back(
    tmp_path: Path, large: bytes
) -> None:
    async with attacked_server(tmp_path, "[files]\nimage_workers = 1\n") as served:
        async with http_api(served) as api:
            alice, bob = await api.account(), await api.account()
        pid = served.process.pid
        reset_peak(pid)
        before = rss_mib(pid)
        statuses: list[int] = []
        slowest = 0.0

        async def one() -> None:
            statuses.append(await _upload(served, alice, large, "image"))

        async with http_api(served) as control, trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
            while len(statuses) < 3:
                started = time.monotonic()
                reply = await control.http.get("/api/v1/users/me", headers=control.auth(bob))
                assert reply.status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                await trio.sleep(0.05)
        growth = peak_rss_mib(pid) - before
        left = rss_mib(pid) - before
        print(
            f"3 concurrent 3400x3400 RGBA uploads: peak RSS +{growth:.0f} MiB, "
            f"+{left:.0f} MiB after, slowest control request {slowest * 1000:.0f} ms"
        )
        assert statuses == [201, 201, 201]
        assert growth < MAX_GROWTH_MIB
        assert left < 50
        assert slowest < MAX_CONTROL_S
