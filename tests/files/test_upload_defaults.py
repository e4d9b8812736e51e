"""Uploads at the default limits through a real ``sandcat serve``: they stream.

The regression of issue 11: bodies over ``http.max_body_bytes`` (1 MiB) were
stored truncated (a 2,000,000-byte file as 0 bytes) and still answered 201,
and a valid 1.5 MB PNG got 415. And one 100 MiB upload, the default file
limit, must not grow the server's peak memory (VmHWM) by more than 16 MiB.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.files.served import Served, account, send_upload, served, sha256

pytestmark = pytest.mark.slow

_MIB = 1024 * 1024
#: The default max_file_bytes.
FILE_MAX = 100 * _MIB
#: How much the server's peak RSS may grow while it takes a 100 MiB upload.
RSS_GROWTH_MAX = 16 * _MIB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("defaults")) as running:
        yield running


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def who(server: Served) -> dict[str, str]:
    """One account for the module (registrations are limited per client address)."""
    with httpx.Client(base_url=server.http_url, timeout=60) as http:
        return account(http)


@pytest.mark.parametrize(("form", "chunked"), [(False, False), (True, True)])
def test_two_million_byte_file_is_stored_whole(
    http: httpx.Client, who: dict[str, str], form: bool, chunked: bool
) -> None:
    data = os.urandom(2_000_000)
    reply = send_upload(
        http,
        "/api/v1/files",
        who,
        data,
        "application/octet-stream",
        form=form,
        chunked=chunked,
        params={"kind": "file"},
    )
    assert reply.status_code == 201, reply.text
    file = reply.json()["file"]
    assert (file["size"], file["sha256"]) == (2_000_000, sha256(data))
    back = http.get(f"/api/v1/files/{file['id']}/content", headers=who)
    assert back.content == data


def test_a_one_and_a_half_megabyte_png_is_an_image(http: httpx.Client, who: dict[str, str]) -> None:
    out = io.BytesIO()
    Image.frombytes("RGB", (710, 710), os.urandom(710 * 710 * 3)).save(out, format="PNG")
    data = out.getvalue()
    assert len(data) > 1_500_000
    reply = send_upload(
        http,
        "/api/v1/files",
        who,
        data,
        "image/png",
        form=False,
        chunked=False,
        params={"kind": "image"},
    )
    assert reply.status_code == 201, reply.text
    file = reply.json()["file"]
    assert (file["size"], file["width"], file["thumbnail"]) == (len(data), 710, True)
    assert sha256(http.get(f"/api/v1/files/{file['id']}/content", headers=who).content) == (
        sha256(data)
    )


def test_a_100_mib_upload_streams_in_bounded_memory(
    server: Served, http: httpx.Client, who: dict[str, str]
) -> None:
    block = os.urandom(_MIB)
    # Warm up the upload path (lazy imports, thread pool) before the baseline.
    warm = send_upload(
        http,
        "/api/v1/files",
        who,
        block,
        "application/octet-stream",
        form=False,
        chunked=False,
        params={"kind": "file"},
    )
    assert warm.status_code == 201, warm.text
    before = server.peak_rss_bytes()

    sent = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for index in range(FILE_MAX // _MIB):
            piece = index.to_bytes(8, "big") + block[8:]  # every MiB differs
            sent.update(piece)
            yield piece

    reply = http.post(
        "/api/v1/files",
        params={"kind": "file"},
        content=body(),
        headers={
            **who,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(FILE_MAX),
        },
    )
    assert reply.status_code == 201, reply.text
    growth = server.peak_rss_bytes() - before
    file = reply.json()["file"]
    assert (file["size"], file["sha256"]) == (FILE_MAX, sent.hexdigest())
    print(f"VmHWM growth during a 100 MiB upload: {growth} bytes")
    assert growth <= RSS_GROWTH_MAX, growth

    stored = hashlib.sha256()
    with http.stream("GET", f"/api/v1/files/{file['id']}/content", headers=who) as download:
        assert download.status_code == 200
        for chunk in download.iter_bytes():
            stored.update(chunk)
    assert stored.hexdigest() == sent.hexdigest()
