"""The janitor deletes uploads never sent in a message, after files.orphan_ttl_s."""

from __future__ import annotations

import pytest
import trio

from tests.files.media import png
from tests.files.scene import content, uploaded
from tests.gateway.raw import Connect, ok_body
from tests.gateway.test_attachments import _image, _pair
from tests.scene import Api


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"files.orphan_ttl_s": 1, "files.janitor_interval_s": 0.1}


async def test_janitor_removes_unsent_uploads_and_keeps_sent_ones(
    api: Api, connect: Connect
) -> None:
    alice, _bob, cid, conn = await _pair(api, connect)
    sent = await uploaded(api, alice, png(), "image/png")
    orphan = await uploaded(api, alice, png(8, 8), "image/png")
    ok_body(await conn.request(_image(conn, cid, sent, "keep")))
    with trio.fail_after(5):
        for _ in range(100):
            if (await content(api, alice, orphan["id"])).status_code == 404:
                break
            await trio.sleep(0.1)
    assert (await content(api, alice, sent["id"])).status_code == 200
    listing = (await api.http.get("/api/v1/files", headers=api.auth(alice))).json()
    assert [f["id"] for f in listing["files"]] == [sent["id"]]
