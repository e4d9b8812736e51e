"""Direct uploads: the client PUTs to a presigned S3 URL, then the server checks the bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.files.media import PDF, jpeg, png
from tests.files.scene import content
from tests.scene import Account, Api


async def _begin(api: Api, who: Account, **body: Any) -> httpx.Response:
    return await api.http.post("/api/v1/files/direct", json=body, headers=api.auth(who))


async def test_direct_upload_round_trip_on_s3_only(api: Api, backend: str) -> None:
    alice = await api.account()
    data = png(90, 60)
    reply = await _begin(api, alice, kind="image", content_type="image/png", size=len(data))
    if backend == "local":
        assert reply.status_code == 400
        return
    assert reply.status_code == 201, reply.text
    ticket = reply.json()
    file_id = ticket["file"]["id"]
    complete = f"/api/v1/files/{file_id}/complete"
    early = await api.http.post(complete, headers=api.auth(alice))
    assert early.status_code == 409
    async with httpx.AsyncClient(timeout=10) as storage:
        bad = await storage.put(
            ticket["upload_url"], content=data + b"x", headers={"Content-Type": "image/png"}
        )
        assert bad.status_code == 403  # the size is signed
        put = await storage.put(
            ticket["upload_url"], content=data, headers={"Content-Type": "image/png"}
        )
        assert put.status_code == 200
    assert (await api.http.post(complete, headers=api.auth(await api.account()))).status_code == 404
    done = await api.http.post(complete, headers=api.auth(alice))
    assert done.status_code == 200, done.text
    file = done.json()["file"]
    assert (file["width"], file["height"], file["thumbnail"]) == (90, 60, True)
    assert (await content(api, alice, file_id)).content == data
    again = await api.http.post(complete, headers=api.auth(alice))
    assert again.json()["file"] == file


async def test_direct_upload_with_lying_bytes_is_415_and_removed(
    api: Api, backend: str, stored_keys: Callable[[], list[str]]
) -> None:
    if backend == "local":
        return
    alice = await api.account()
    data = jpeg()
    ticket = (
        await _begin(api, alice, kind="image", content_type="image/png", size=len(data))
    ).json()
    async with httpx.AsyncClient(timeout=10) as storage:
        put = await storage.put(
            ticket["upload_url"], content=data, headers={"Content-Type": "image/png"}
        )
        assert put.status_code == 200
    complete = f"/api/v1/files/{ticket['file']['id']}/complete"
    assert (await api.http.post(complete, headers=api.auth(alice))).status_code == 415
    assert stored_keys() == []
    assert (await api.http.post(complete, headers=api.auth(alice))).status_code == 404


async def test_direct_upload_announcements_are_checked(api: Api, backend: str) -> None:
    if backend == "local":
        return
    alice = await api.account()
    cases = [
        ({"kind": "image", "content_type": "application/pdf", "size": 10}, 415),
        ({"kind": "image", "content_type": "image/png", "size": 10**12}, 413),
        ({"kind": "avatar", "content_type": "image/png", "size": 10}, 422),
        ({"kind": "image", "content_type": "image/png", "size": -1}, 422),
        ({"kind": "image", "content_type": "image/png", "size": "10"}, 422),
        ({"kind": "image", "content_type": "image/png"}, 422),
        ({"kind": "file", "size": 10}, 422),
    ]
    for body, status in cases:
        reply = await _begin(api, alice, **body)
        assert reply.status_code == status, (body, reply.text)
    ok = await _begin(api, alice, kind="file", content_type="application/pdf", size=len(PDF))
    assert ok.status_code == 201
