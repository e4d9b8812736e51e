"""Storage down: uploads and downloads answer 503 and leave nothing half-written visible."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.blobs.conftest import fresh_bucket
from tests.files.media import PDF, png
from tests.files.scene import content, upload, uploaded
from tests.s3server import RcloneS3
from tests.scene import Api


@pytest.fixture
def rclone(backend: str, tmp_path: Path) -> Iterator[RcloneS3 | None]:
    """A private S3 server this test may stop and restart (on the same port)."""
    if backend == "local":
        yield None
        return
    server = RcloneS3(tmp_path / "s3")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_overrides(rclone: RcloneS3 | None) -> dict[str, object]:
    return {} if rclone is None else {"backends.s3_url": rclone.url(fresh_bucket())}


class Outage:
    def __init__(self, rclone: RcloneS3 | None, objects: Path) -> None:
        self._rclone = rclone
        self._objects = objects

    def begin(self) -> None:
        if self._rclone is not None:
            self._rclone.stop()
            return
        # The directory becomes a file: every write and read below it fails.
        self._objects.rename(self._objects.with_name("objects.away"))
        self._objects.write_text("storage is down")

    def end(self) -> None:
        if self._rclone is not None:
            self._rclone.start()
            return
        self._objects.unlink()
        shutil.move(self._objects.with_name("objects.away"), self._objects)


@pytest.fixture
def outage(rclone: RcloneS3 | None, tmp_path: Path) -> Outage:
    return Outage(rclone, tmp_path / "data" / "blobs" / "objects")


async def test_storage_down_is_503_and_nothing_half_written_is_visible(
    api: Api, outage: Outage, stored_keys: Callable[[], list[str]]
) -> None:
    alice = await api.account()
    before = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    outage.begin()
    try:
        for data, ctype, kind in [(png(), "image/png", "image"), (PDF, "application/pdf", "file")]:
            reply = await upload(api, alice, data, ctype, kind=kind)
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"]["code"] == "unavailable"
        assert (await content(api, alice, before["id"])).status_code == 503
        listing = (await api.http.get("/api/v1/files", headers=api.auth(alice))).json()
        assert [f["id"] for f in listing["files"]] == [before["id"]]
        assert listing["used_bytes"] == before["size"]
    finally:
        outage.end()
    assert stored_keys() == [f"u/{before['id']}"]
    assert (await content(api, alice, before["id"])).content == PDF
    again = await upload(api, alice, png(), "image/png")
    assert again.status_code == 201
