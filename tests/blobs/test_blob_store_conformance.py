"""The blob store contract (sandcat.blobs.store), run against every backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from sandcat.blobs import BlobNotFound, BlobStore, LocalBlobStore
from sandcat.blobs.reader import CHUNK_BYTES
from sandcat.blobs.s3 import S3BlobStore, parse_s3_url
from sandcat.errors import StoreUnavailable

TIMEOUT_S = 10


async def read(blobs: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    with trio.fail_after(TIMEOUT_S):
        reader = await blobs.open(key, start=start, end=end)
        return b"".join([chunk async for chunk in reader])


async def test_put_bytes_then_read_size_and_delete(blobs: BlobStore) -> None:
    await blobs.put("u/abc", b"hello blob", content_type="text/plain")
    assert await read(blobs, "u/abc") == b"hello blob"
    assert await blobs.size("u/abc") == 10
    await blobs.delete("u/abc")
    assert await blobs.size("u/abc") is None
    with pytest.raises(BlobNotFound):
        await blobs.open("u/abc")


async def test_put_file_larger_than_a_chunk_round_trips(blobs: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK_BYTES * 2 + 123)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    await blobs.put("u/big", source, content_type="application/octet-stream")
    assert await read(blobs, "u/big") == data
    assert await blobs.size("u/big") == len(data)


async def test_empty_object(blobs: BlobStore) -> None:
    await blobs.put("u/empty", b"", content_type="application/octet-stream")
    assert await blobs.size("u/empty") == 0
    assert await read(blobs, "u/empty") == b""


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, b"0123456789"),
        (3, None, b"3456789"),
        (0, 4, b"0123"),
        (2, 5, b"234"),
        (8, 100, b"89"),
        (5, 5, b""),
        (10, None, b""),
        (12, None, b""),
    ],
)
async def test_ranges(blobs: BlobStore, start: int, end: int | None, expected: bytes) -> None:
    await blobs.put("u/digits", b"0123456789", content_type="text/plain")
    assert await read(blobs, "u/digits", start, end) == expected


async def test_put_replaces_whole_object(blobs: BlobStore) -> None:
    await blobs.put("u/x", b"first version, long", content_type="text/plain")
    await blobs.put("u/x", b"second", content_type="text/plain")
    assert await read(blobs, "u/x") == b"second"


async def test_missing_objects(blobs: BlobStore) -> None:
    assert await blobs.size("u/none") is None
    await blobs.delete("u/none")
    with pytest.raises(BlobNotFound):
        await blobs.open("u/none")
    with pytest.raises(BlobNotFound):
        await blobs.open("u/none", start=0, end=0)


async def test_reader_closed_early_releases_it(blobs: BlobStore) -> None:
    await blobs.put("u/long", os.urandom(CHUNK_BYTES * 3), content_type="image/png")
    reader = await blobs.open("u/long")
    async for chunk in reader:
        assert chunk
        break
    await reader.aclose()
    await reader.aclose()
    await blobs.delete("u/long")


@pytest.mark.parametrize("key", ["", "../etc/passwd", "a/../b", "/abs", "a//b", "dir/", "sp ace"])
async def test_unsafe_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.put(key, b"x", content_type="text/plain")


async def test_failed_put_leaves_nothing_visible(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        await blobs.put("u/gone", tmp_path / "no-such-source", content_type="text/plain")
    assert await blobs.size("u/gone") is None


@pytest.fixture(params=["local", "s3"])
async def broken(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A store whose storage is down: a file where the directory should be; a closed port."""
    if request.param == "local":
        root = tmp_path / "blobs"
        store = LocalBlobStore(root)
        await store.open_store()
        for sub in root.iterdir():
            sub.rmdir()
            sub.write_text("not a directory")
        return store
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return S3BlobStore(parse_s3_url(f"s3://key1234:secret@127.0.0.1:{port}/bucket"))


async def test_storage_down_is_store_unavailable(broken: BlobStore) -> None:
    with trio.fail_after(TIMEOUT_S):
        with pytest.raises(StoreUnavailable):
            await broken.put("u/a", b"x", content_type="text/plain")
        with pytest.raises(StoreUnavailable):
            await broken.open("u/a")
        with pytest.raises(StoreUnavailable):
            await broken.size("u/a")
        with pytest.raises(StoreUnavailable):
            await broken.delete("u/a")


async def test_local_store_unusable_root_fails_at_open(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreUnavailable):
        await LocalBlobStore(tmp_path / "file" / "blobs").open_store()


async def test_local_store_sweeps_partial_files_of_a_crash(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.open_store()
    (tmp_path / "blobs" / "partial" / "leftover").write_bytes(b"half")
    await LocalBlobStore(tmp_path / "blobs").open_store()
    assert list((tmp_path / "blobs" / "partial").iterdir()) == []
