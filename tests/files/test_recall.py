"""A recalled message's files are withdrawn from its conversation (SPEC.md "The timeline").

Runs on both file backends (a directory with SQLite, S3 with PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import trio

from sandcat.app import Server
from sandcat.client import open_client
from sandcat.protocol import Kind
from tests.files.media import png
from tests.files.scene import content, uploaded
from tests.scene import Account, Api


def _image(file: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": file["id"],
        "mime": file["content_type"],
        "size": file["size"],
        "width": file["width"],
        "height": file["height"],
    }


async def test_recall_withdraws_files_unless_another_message_there_refers_to_them(
    api: Api, server: Server
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    solo = await uploaded(api, alice, png(), "image/png")
    shared = await uploaded(api, alice, png(color=(1, 2, 3)), "image/png")
    http_url = f"http://127.0.0.1:{server.http_port}"
    with trio.fail_after(20):
        async with open_client(
            http_url, login=alice.username, password=alice.password, device="d"
        ) as client:
            session = client.session
            first = await session.send(cid, kind=Kind.IMAGE, body=_image(solo))
            second = await session.send(cid, kind=Kind.IMAGE, body=_image(shared))
            await session.send(cid, kind=Kind.IMAGE, body=_image(shared))
            assert await _status(api, bob, solo, shared) == (200, 200)

            await session.recall(cid, first.seq)
            await session.recall(cid, second.seq)

    assert await _status(api, bob, solo, shared) == (404, 200)
    assert await _status(api, alice, solo, shared) == (200, 200)


async def _status(api: Api, who: Account, *files: dict[str, Any]) -> tuple[int, ...]:
    return tuple([(await content(api, who, f["id"])).status_code for f in files])
