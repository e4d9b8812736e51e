"""Every upload limit at max-1, max and max+1, through a real ``sandcat serve``.

Each per-kind limit, the avatar limit, the per-user quota and the JSON request
body limit, for raw and multipart bodies, with a Content-Length and chunked.
What is accepted is downloaded back and must hash to the bytes sent; what is
refused gets 413 and leaves nothing behind (no upload listed, no blob, no
spool file). Limits above 8 MiB are lowered here (README: "limits above 8 MiB
may be probed with the setting lowered"), but every one stays above the 1 MiB
JSON body limit, the edge uploads were once silently truncated at.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.files.media import png
from tests.files.served import Served, account, in_pieces, send_upload, served, sha256

pytestmark = pytest.mark.slow

IMAGE_MAX = 1_200_000
VOICE_MAX = 1_100_000
VIDEO_MAX = 1_300_000
FILE_MAX = 1_500_000
AVATAR_MAX = 5 * 1024 * 1024  # the default
QUOTA = 6 * 1024 * 1024
PIXELS_MAX = 10_000  # files.max_image_pixels, lowered from 50,000,000
BODY_MAX = 1024 * 1024  # http.max_body_bytes, the default

_CONFIG = f"""
[files]
max_image_bytes = {IMAGE_MAX}
max_voice_bytes = {VOICE_MAX}
max_video_bytes = {VIDEO_MAX}
max_file_bytes = {FILE_MAX}
quota_bytes = {QUOTA}
max_image_pixels = {PIXELS_MAX}
"""

_POOL = os.urandom(AVATAR_MAX + 1)
VARIANTS = [
    pytest.param(False, False, id="raw-length"),
    pytest.param(False, True, id="raw-chunked"),
    pytest.param(True, False, id="multipart-length"),
    pytest.param(True, True, id="multipart-chunked"),
]


def _filler(size: int) -> bytes:
    return _POOL[:size]


def padded_png(size: int) -> bytes:
    """A valid 8x8 PNG of exactly ``size`` bytes (a private chunk pads it)."""
    base = png(8, 8)
    pad = size - len(base) - 12
    assert pad >= 0
    chunk_type = b"prVt"
    data = _filler(pad)
    chunk = struct.pack(">I", pad) + chunk_type + data
    chunk += struct.pack(">I", zlib.crc32(chunk_type + data))
    return base[:-12] + chunk + base[-12:]


def _voice(size: int) -> bytes:
    return (b"ID3" + _filler(size))[:size]


def _video(size: int) -> bytes:
    return (b"\x00\x00\x00\x18ftypisom" + _filler(size))[:size]


#: kind -> (limit, declared type, bytes of a given size)
KINDS: dict[str, tuple[int, str, Callable[[int], bytes]]] = {
    "image": (IMAGE_MAX, "image/png", padded_png),
    "voice": (VOICE_MAX, "audio/mpeg", _voice),
    "video": (VIDEO_MAX, "video/mp4", _video),
    "file": (FILE_MAX, "application/octet-stream", _filler),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("limits"), _CONFIG) as running:
        yield running


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def member(server: Served) -> dict[str, str]:
    """One account for the module (registrations are limited per client address)."""
    with httpx.Client(base_url=server.http_url, timeout=60) as http:
        return account(http)


@pytest.fixture
def who(http: httpx.Client, member: dict[str, str]) -> dict[str, str]:
    """The module's account with its files deleted, so its whole quota is free."""
    for file in http.get("/api/v1/files", headers=member).json()["files"]:
        if file["kind"] != "avatar":
            assert http.delete(f"/api/v1/files/{file['id']}", headers=member).status_code == 204
    return member


def _listing(http: httpx.Client, who: dict[str, str]) -> tuple[list[str], int]:
    reply = http.get("/api/v1/files", headers=who)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return [f["id"] for f in body["files"]], body["used_bytes"]


def _assert_stored(http: httpx.Client, who: dict[str, str], reply: httpx.Response, data: bytes):
    assert reply.status_code == 201, reply.text[:300]
    file = reply.json()["file"]
    assert (file["size"], file["sha256"]) == (len(data), sha256(data))
    back = http.get(f"/api/v1/files/{file['id']}/content", headers=who)
    assert back.status_code == 200
    assert sha256(back.content) == sha256(data)


def _assert_refused(
    server: Served, http: httpx.Client, who: dict[str, str], send: Callable[[], httpx.Response]
) -> httpx.Response:
    listed, blobs = _listing(http, who), server.blob_files()
    reply = send()
    assert reply.status_code == 413, reply.text[:300]
    assert reply.json()["error"]["code"] == "too_large"
    assert _listing(http, who) == listed
    assert server.blob_files() == blobs
    assert server.spool_files() == []
    return reply


@pytest.mark.parametrize(("form", "chunked"), VARIANTS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_kind_limit_edges(
    server: Served, http: httpx.Client, who: dict[str, str], kind: str, form: bool, chunked: bool
) -> None:
    limit, content_type, make = KINDS[kind]

    def send(data: bytes) -> httpx.Response:
        return send_upload(
            http,
            "/api/v1/files",
            who,
            data,
            content_type,
            form=form,
            chunked=chunked,
            params={"kind": kind},
        )

    for size in (limit - 1, limit):
        data = make(size)
        _assert_stored(http, who, send(data), data)
    _assert_refused(server, http, who, lambda: send(make(limit + 1)))


@pytest.mark.parametrize(("form", "chunked"), VARIANTS)
def test_avatar_limit_edges(
    server: Served, http: httpx.Client, who: dict[str, str], form: bool, chunked: bool
) -> None:

    def send(data: bytes) -> httpx.Response:
        return send_upload(
            http,
            "/api/v1/users/me/avatar",
            who,
            data,
            "image/png",
            form=form,
            chunked=chunked,
            method="PUT",
        )

    for size in (AVATAR_MAX - 1, AVATAR_MAX):
        reply = send(padded_png(size))
        assert reply.status_code == 200, reply.text[:300]
        avatar = reply.json()["avatar"]
        me = http.get("/api/v1/users/me", headers=who).json()["user"]
        assert me["avatar"] == avatar
        # Avatars are stored re-encoded (256x256 PNG): what is served is what was stored.
        served_bytes = http.get(f"/api/v1/avatars/{avatar}").content
        assert sha256(served_bytes) == reply.json()["file"]["sha256"]
    blobs = server.blob_files()
    reply = send(padded_png(AVATAR_MAX + 1))
    assert reply.status_code == 413, reply.text[:300]
    assert http.get("/api/v1/users/me", headers=who).json()["user"]["avatar"] == avatar
    assert server.blob_files() == blobs
    assert server.spool_files() == []


def test_group_avatar_limit_edges(server: Served, http: httpx.Client, who: dict[str, str]) -> None:
    reply = http.post("/api/v1/groups", json={"name": "edges", "members": []}, headers=who)
    assert reply.status_code == 201, reply.text
    path = f"/api/v1/groups/{reply.json()['group']['id']}/avatar"
    for size in (AVATAR_MAX - 1, AVATAR_MAX):
        reply = send_upload(
            http, path, who, padded_png(size), "image/png", form=False, chunked=True, method="PUT"
        )
        assert reply.status_code == 200, reply.text[:300]
    blobs = server.blob_files()
    reply = send_upload(
        http,
        path,
        who,
        padded_png(AVATAR_MAX + 1),
        "image/png",
        form=False,
        chunked=False,
        method="PUT",
    )
    assert reply.status_code == 413, reply.text[:300]
    assert server.blob_files() == blobs


@pytest.mark.parametrize(("form", "chunked"), VARIANTS)
def test_quota_edges(
    server: Served, http: httpx.Client, who: dict[str, str], form: bool, chunked: bool
) -> None:
    content_type = "application/octet-stream"
    for _ in range(4):
        filler = os.urandom(VIDEO_MAX)
        _assert_stored(
            http,
            who,
            send_upload(
                http,
                "/api/v1/files",
                who,
                filler,
                content_type,
                form=False,
                chunked=False,
                params={"kind": "file"},
            ),
            filler,
        )
    room = QUOTA - _listing(http, who)[1]
    assert 0 < room < FILE_MAX

    def send(data: bytes) -> httpx.Response:
        return send_upload(
            http,
            "/api/v1/files",
            who,
            data,
            content_type,
            form=form,
            chunked=chunked,
            params={"kind": "file"},
        )

    refused = _assert_refused(server, http, who, lambda: send(_filler(room + 1)))
    assert "quota" in refused.json()["error"]["message"]
    data = _filler(room - 1)
    reply = send(data)
    _assert_stored(http, who, reply, data)
    assert (
        http.delete(f"/api/v1/files/{reply.json()['file']['id']}", headers=who).status_code == 204
    )
    data = _filler(room)
    _assert_stored(http, who, send(data), data)
    assert _listing(http, who)[1] == QUOTA
    _assert_refused(server, http, who, lambda: send(b"\x00"))


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (trailing blanks are JSON whitespace)."""
    text = json.dumps({"display_name": "Edge"}).encode()
    return text + b" " * (size - len(text))


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_request_body_limit_edges(
    server: Served, http: httpx.Client, who: dict[str, str], chunked: bool
) -> None:

    def send(size: int) -> httpx.Response:
        body = _json_of_size(size)
        return http.patch(
            "/api/v1/users/me",
            content=in_pieces(body) if chunked else body,
            headers={**who, "Content-Type": "application/json"},
        )

    for size in (BODY_MAX - 1, BODY_MAX):
        reply = send(size)
        assert reply.status_code == 200, reply.text[:300]
        assert reply.json()["user"]["display_name"] == "Edge"
    reply = send(BODY_MAX + 1)
    assert reply.status_code == 413, reply.text[:300]
    assert reply.json()["error"]["code"] == "too_large"
    # The connection is still good for the next request.
    assert http.get("/api/v1/users/me", headers=who).status_code == 200


def test_padded_png_is_a_png_of_that_size(tmp_path: Path) -> None:
    from PIL import Image

    data = padded_png(70_001)
    assert len(data) == 70_001
    (tmp_path / "a.png").write_bytes(data)
    with Image.open(tmp_path / "a.png") as image:
        image.load()
        assert image.size == (8, 8)


def test_a_client_leaving_mid_upload_leaves_nothing(
    server: Served, http: httpx.Client, who: dict[str, str]
) -> None:
    listed, blobs = _listing(http, who), server.blob_files()
    head = (
        "POST /api/v1/files?kind=file HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: {who['Authorization']}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", int(server.http_url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(head + _filler(600_000))
    time.sleep(0.3)  # the server sees the disconnect and cleans up
    deadline = time.monotonic() + 10
    while server.spool_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.spool_files() == []
    assert _listing(http, who) == listed
    assert server.blob_files() == blobs


@pytest.mark.parametrize(
    ("width", "height", "status"),
    [(99, 101, 201), (100, 100, 201), (73, 137, 413)],
    ids=["max-1", "max", "max+1"],
)
def test_image_pixel_limit_edges(
    server: Served, http: httpx.Client, who: dict[str, str], width: int, height: int, status: int
) -> None:
    assert width * height in {PIXELS_MAX - 1, PIXELS_MAX, PIXELS_MAX + 1}
    data = png(width, height)

    def send() -> httpx.Response:
        return send_upload(
            http,
            "/api/v1/files",
            who,
            data,
            "image/png",
            form=False,
            chunked=False,
            params={"kind": "image"},
        )

    if status == 413:
        _assert_refused(server, http, who, send)
        return
    reply = send()
    _assert_stored(http, who, reply, data)
    assert (reply.json()["file"]["width"], reply.json()["file"]["height"]) == (width, height)
