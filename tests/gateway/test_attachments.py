"""SEND of image/file/voice/video bodies checks the uploads they refer to (SPEC.md §9)."""

from __future__ import annotations

from typing import Any

from sandcat.protocol import Err, ErrorCode, Msg, Send
from tests.files.media import PDF, png, wav
from tests.files.scene import content, uploaded
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


def _image(conn: Raw, cid: str, file: dict[str, Any], cmid: str, **extra: Any) -> Send:
    body = {
        "file": file["id"],
        "mime": file["content_type"],
        "size": file["size"],
        "width": file["width"],
        "height": file["height"],
        **extra,
    }
    return Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=2, body=body)


async def _pair(api: Api, connect: Connect) -> tuple[Account, Account, str, Raw]:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    return alice, bob, cid, await connect(alice.token)


async def test_image_message_with_own_upload_is_delivered_and_readable_by_the_peer(
    api: Api, connect: Connect
) -> None:
    alice, bob, cid, conn = await _pair(api, connect)
    outsider = await api.account()
    file = await uploaded(api, alice, png(), "image/png")
    assert (await content(api, bob, file["id"])).status_code == 404
    bob_conn = await connect(bob.token, device="b1")
    ok_body(await conn.request(_image(conn, cid, file, "m1", name="cat.png")))
    push = await bob_conn.push()
    assert isinstance(push, Msg)
    assert push.body["file"] == file["id"]
    assert (await content(api, bob, file["id"])).content == png()
    thumb = await api.http.get(f"/api/v1/files/{file['id']}/thumbnail", headers=api.auth(bob))
    assert thumb.status_code == 200
    assert (await content(api, outsider, file["id"])).status_code == 404


async def _refused(conn: Raw, frame: Send) -> str:
    reply = await conn.request(frame)
    assert isinstance(reply, Err), reply
    assert reply.code == ErrorCode.BAD_REQUEST
    return reply.message


async def test_unknown_foreign_unfinished_or_mismatched_uploads_are_bad_request(
    api: Api, connect: Connect
) -> None:
    alice, bob, cid, conn = await _pair(api, connect)
    mine = await uploaded(api, alice, png(), "image/png")
    theirs = await uploaded(api, bob, png(), "image/png")
    pdf = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    unknown = {**mine, "id": "no-such-upload"}
    await _refused(conn, _image(conn, cid, unknown, "u1"))
    await _refused(conn, _image(conn, cid, theirs, "u2"))
    await _refused(conn, _image(conn, cid, {**mine, "size": mine["size"] + 1}, "u3"))
    await _refused(conn, _image(conn, cid, {**mine, "content_type": "image/gif"}, "u4"))
    await _refused(conn, _image(conn, cid, pdf, "u5"))  # a file upload is not an image
    await _refused(conn, _image(conn, cid, mine, "u6", thumb=theirs["id"]))
    await _refused(conn, _image(conn, cid, mine, "u7", thumb=pdf["id"]))
    await api.http.delete(f"/api/v1/files/{pdf['id']}", headers=api.auth(alice))
    file_msg = {"file": pdf["id"], "mime": "application/pdf", "size": pdf["size"], "name": "a"}
    await _refused(conn, Send(rid=conn.rid(), cid=cid, cmid="u8", kind=3, body=file_msg))
    # None of the refusals consumed a seq: the next good send is seq 1.
    assert ok_body(await conn.request(_image(conn, cid, mine, "ok")))["seq"] == 1


async def test_forward_of_a_file_seen_in_a_conversation_is_allowed(
    api: Api, connect: Connect
) -> None:
    alice, bob, cid, conn = await _pair(api, connect)
    carol = await api.account()
    cid_bc = await api.befriend(bob, carol)
    file = await uploaded(api, alice, wav(), "audio/wav", kind="voice")
    voice = {"file": file["id"], "mime": "audio/wav", "size": file["size"], "duration_ms": 1500}
    bob_conn = await connect(bob.token, device="b1")
    # Bob cannot forward it before it was sent to him...
    await _refused(bob_conn, Send(rid=bob_conn.rid(), cid=cid_bc, cmid="f0", kind=4, body=voice))
    ok_body(await conn.request(Send(rid=conn.rid(), cid=cid, cmid="v1", kind=4, body=voice)))
    # ... and can afterwards; then Carol can read it too.
    forward = Send(rid=bob_conn.rid(), cid=cid_bc, cmid="f1", kind=4, body=voice)
    ok_body(await bob_conn.request(forward))
    assert (await content(api, carol, file["id"])).content == wav()
