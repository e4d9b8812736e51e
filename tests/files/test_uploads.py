"""Uploading and downloading files over HTTP, on both blob backends."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from tests.files.media import PDF, gif_with_alpha, jpeg, mp4, ogg_opus, png, wav
from tests.files.scene import content, upload, uploaded
from tests.scene import Api


async def test_image_upload_records_size_and_serves_bytes_and_thumbnail(api: Api) -> None:
    alice = await api.account()
    data = png(64, 48)
    file = await uploaded(api, alice, data, "image/png", name="holiday.png")
    assert file["kind"] == "image"
    assert (file["width"], file["height"], file["size"]) == (64, 48, len(data))
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["thumbnail"] is True
    assert file["name"] == "holiday.png"

    reply = await content(api, alice, file["id"])
    assert reply.status_code == 200
    assert reply.content == data
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["content-length"] == str(len(data))
    assert reply.headers["content-disposition"].startswith('inline; filename="holiday.png"')
    assert "max-age" in reply.headers["cache-control"]
    assert reply.headers["cache-control"].startswith("private")
    assert reply.headers["x-content-type-options"] == "nosniff"

    etag = reply.headers["etag"]
    again = await content(api, alice, file["id"], {"If-None-Match": etag})
    assert again.status_code == 304

    thumb = await api.http.get(f"/api/v1/files/{file['id']}/thumbnail", headers=api.auth(alice))
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(b"\xff\xd8\xff")

    info = await api.http.get(f"/api/v1/files/{file['id']}", headers=api.auth(alice))
    assert info.json()["file"] == file


@pytest.mark.parametrize(
    ("data", "ctype", "kind", "expect"),
    [
        (jpeg(), "image/jpeg", "image", {"width": 40, "height": 30}),
        (gif_with_alpha(), "image/gif", "image", {"width": 12, "thumbnail": True}),
        (wav(1500), "audio/wav", "voice", {"duration_ms": 1500}),
        (ogg_opus(2000), "audio/ogg", "voice", {"duration_ms": 2000}),
        (mp4(3000), "video/mp4", "video", {"duration_ms": 3000, "thumbnail": False}),
        (PDF, "application/pdf", "file", {"thumbnail": False, "duration_ms": None}),
        (b"just some notes\n", "text/plain; charset=utf-8", "file", {"content_type": "text/plain"}),
        (b"\x00\x01binary", "application/octet-stream", "file", {"size": 8}),
    ],
)
async def test_kinds_and_what_is_read_from_them(
    api: Api, data: bytes, ctype: str, kind: str, expect: dict[str, object]
) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, data, ctype, kind=kind)
    for key, value in expect.items():
        assert file[key] == value, key
    assert (await content(api, alice, file["id"])).content == data


async def test_multipart_upload_takes_the_file_part_and_its_type(api: Api) -> None:
    alice = await api.account()
    reply = await api.http.post(
        "/api/v1/files",
        params={"kind": "file"},
        data={"caption": "ignored"},
        files={"file": ("report.pdf", PDF, "application/pdf")},
        headers=api.auth(alice),
    )
    assert reply.status_code == 201, reply.text
    file = reply.json()["file"]
    assert (file["name"], file["content_type"], file["size"]) == (
        "report.pdf",
        "application/pdf",
        len(PDF),
    )
    download = await content(api, alice, file["id"])
    assert download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("/abs/path/x.pdf", "x.pdf"),
        ("bad\x00na\nme\r.pdf", "badname.pdf"),
        ("..", ""),
        (".hidden", "hidden"),
        ("名前 with spaces.pdf", "名前 with spaces.pdf"),
        ("x" * 400 + ".pdf", "x" * 255),
    ],
)
async def test_odd_file_names_are_metadata_only(
    api: Api, stored_keys: Callable[[], list[str]], name: str, shown: str
) -> None:
    """The name is cleaned for display; the blob key is the server's, never the name."""
    alice = await api.account()
    reply = await upload(api, alice, PDF, "application/pdf", kind="file", name=name)
    assert reply.status_code == 201, reply.text
    file = reply.json()["file"]
    assert file["name"] == shown
    assert stored_keys() == [f"u/{file['id']}"]
    download = await content(api, alice, file["id"])
    assert download.status_code == 200
    disposition = download.headers["content-disposition"]
    assert "\n" not in disposition
    assert "/" not in disposition.split("filename*=")[0]


@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=0-3", 206, b"%PDF", "bytes 0-3/{n}"),
        ("bytes=5-", 206, PDF[5:], "bytes 5-{last}/{n}"),
        ("bytes=-6", 206, PDF[-6:], "bytes {m}-{last}/{n}"),
        ("bytes=2-1000000", 206, PDF[2:], "bytes 2-{last}/{n}"),
        ("bytes=1000-", 416, b"", "bytes */{n}"),
        ("bytes=-0", 416, b"", "bytes */{n}"),
        ("bytes=0-1,4-5", 200, PDF, None),
        ("pages=1", 200, PDF, None),
    ],
)
async def test_range_requests(
    api: Api, header: str, status: int, body: bytes, content_range: str | None
) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    reply = await content(api, alice, file["id"], {"Range": header})
    assert reply.status_code == status
    assert reply.content == body
    n = len(PDF)
    if content_range is not None:
        expected = content_range.format(n=n, last=n - 1, m=n - 6)
        assert reply.headers["content-range"] == expected
    assert reply.headers["accept-ranges"] == "bytes"


async def test_if_range_with_another_etag_sends_everything(api: Api) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    reply = await content(api, alice, file["id"], {"Range": "bytes=0-3", "If-Range": '"other"'})
    assert (reply.status_code, reply.content) == (200, PDF)


async def test_list_my_files_with_usage(api: Api) -> None:
    alice = await api.account()
    first = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    second = await uploaded(api, alice, png(), "image/png")
    reply = await api.http.get("/api/v1/files", headers=api.auth(alice))
    body = reply.json()
    assert [f["id"] for f in body["files"]] == [second["id"], first["id"]] or {
        f["id"] for f in body["files"]
    } == {first["id"], second["id"]}
    assert body["used_bytes"] == first["size"] + second["size"]
    assert body["quota_bytes"] > 0


async def test_delete_my_upload_and_not_someone_elses(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    file = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    path = f"/api/v1/files/{file['id']}"
    assert (await api.http.delete(path, headers=api.auth(bob))).status_code == 404
    assert (await api.http.delete(path, headers=api.auth(alice))).status_code == 204
    assert (await api.http.delete(path, headers=api.auth(alice))).status_code == 404
    assert (await content(api, alice, file["id"])).status_code == 404
    listing = await api.http.get("/api/v1/files", headers=api.auth(alice))
    assert listing.json()["used_bytes"] == 0
