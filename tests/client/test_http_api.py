"""Every `HttpApi` method against a real server: the typed results hold what the
server answered, and refusals raise `HttpError` with the wire code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from sandcat.api.openapi import openapi_document, operation_ids
from sandcat.app import Server
from sandcat.client import HttpApi, HttpError, attachment
from sandcat.client.http_conversations import msgpack_value
from sandcat.protocol import Kind
from tests.client.cast import PASSWORD, Cast
from tests.files.media import png, wav


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"calls.turn_secret": "turn-secret", "calls.turn_urls": "turn:127.0.0.1:3478"}


async def test_the_server_routes(cast: Cast) -> None:
    api = cast.api
    assert await api.health() == "ok"
    assert "sandcat_connections" in await api.metrics()
    served = await api.openapi()
    assert operation_ids(served) == operation_ids(openapi_document())


async def test_accounts_sessions_and_profiles(cast: Cast, tmp_path: Path) -> None:
    api = cast.api
    user = await api.register("sdkann", PASSWORD, display_name="Ann", email="ann@example.com")
    # The address is added once the code mailed to it comes back.
    assert (user.username, user.display_name, user.email) == ("sdkann", "Ann", None)
    outbox, seen = tmp_path / "data" / "outbox", set[Path]()
    first = await api.login("sdkann", PASSWORD, device="phone")
    code = re.findall(r"\b(\d{6})\b", await _new_mail(outbox, seen))[0]
    added = await api.update_me(first.tokens.access_token, email="ann@example.com", email_code=code)
    assert added.email == "ann@example.com"
    await api.logout(first.tokens.access_token)
    with pytest.raises(HttpError) as taken:
        await api.register("sdkann", PASSWORD)
    assert (taken.value.status, taken.value.code, taken.value.field) == (
        409,
        "conflict",
        "username",
    )

    phone = await api.login("sdkann", PASSWORD, device="phone", platform="mobile")
    laptop = await api.login("ann@example.com", PASSWORD, device="laptop")
    assert (phone.user_id, phone.device, laptop.device) == (user.id, "phone", "laptop")
    me = await api.me(phone.tokens.access_token)
    assert me.last_login_device == "laptop"
    changed = await api.update_me(phone.tokens.access_token, signature="hi", read_receipts=False)
    assert (changed.signature, changed.read_receipts) == ("hi", False)

    sessions = await api.sessions(phone.tokens.access_token)
    assert {(s.device, s.current) for s in sessions} == {("phone", True), ("laptop", False)}
    await api.revoke_session(phone.tokens.access_token, laptop.session)
    with pytest.raises(HttpError) as revoked:
        await api.refresh(laptop.tokens.refresh_token)
    assert revoked.value.status == 401

    renewed = await api.refresh(phone.tokens.refresh_token)
    token = renewed.access_token
    bob = await cast.person("bob")
    assert (await api.user(token, bob.id)).username == bob.username
    found = await api.search_users(token, bob.username, limit=1)
    assert [(u.id, u.match) for u in found.users] == [(bob.id, "username")]

    await api.request_code("ann@example.com", "reset")
    mail = await _new_mail(outbox, seen)
    code = re.findall(r"\b(\d{6})\b", mail)[0]
    await api.reset_password("ann@example.com", code, "a new password 2")
    with pytest.raises(HttpError):
        await api.me(token)  # the reset ended every session
    again = await api.login("sdkann", "a new password 2", device="phone")
    token = again.tokens.access_token
    await api.change_password(token, "a new password 2", PASSWORD)
    await api.logout(token)
    with pytest.raises(HttpError):
        await api.me(token)

    last = await api.login("sdkann", PASSWORD, device="phone")
    await api.logout_everywhere(last.tokens.access_token)
    final = await api.login("sdkann", PASSWORD, device="phone")
    await api.disable_me(final.tokens.access_token, PASSWORD)
    with pytest.raises(HttpError) as gone:
        await api.login("sdkann", PASSWORD)
    assert gone.value.status in (401, 403)


async def _new_mail(outbox: Path, seen: set[Path]) -> str:
    """A mail the outbox sender wrote that is not in ``seen`` (then added to it);
    the postman writes mails after the answer."""
    for _ in range(500):
        if mail := _take_new(outbox, seen):
            return mail
        await trio.sleep(0.02)
    raise AssertionError(f"no new mail in {outbox}")


def _take_new(outbox: Path, seen: set[Path]) -> str:
    new = sorted(set(outbox.glob("*.eml")) - seen)
    if not new:
        return ""
    seen.add(new[0])
    return new[0].read_text()


async def test_github_routes_are_404_when_not_configured(cast: Cast) -> None:
    for call in (cast.api.github_login_url(device="d"), cast.api.github_callback("c", "s")):
        with pytest.raises(HttpError) as off:
            await call
        assert off.value.status == 404


async def test_contacts_and_blocks(cast: Cast) -> None:
    api = cast.api
    ann, bob, cat, dan = [await cast.person(n) for n in ("ann", "bob", "cat", "dan")]
    asked = await api.request_friend(ann.token, bob.id, message="hi", remark="Bobby")
    assert (asked.sender, asked.to, asked.status) == (ann.id, bob.id, "pending")
    pending = await api.friend_requests(bob.token)
    assert [r.id for r in pending.incoming] == [asked.id]
    assert pending.outgoing == ()
    friend = await api.accept_friend(bob.token, asked.id, remark="Annie")
    assert (friend.id, friend.remark) == (ann.id, "Annie")
    assert [f.remark for f in await api.friends(ann.token)] == ["Bobby"]

    to_cat = await api.request_friend(ann.token, cat.id)
    assert (await api.cancel_friend_request(ann.token, to_cat.id)).status == "cancelled"
    to_dan = await api.request_friend(ann.token, dan.id)
    assert (await api.reject_friend(dan.token, to_dan.id)).status == "rejected"

    changes = await api.sync_contacts(ann.token)
    assert [f.id for f in changes.friends] == [bob.id]
    assert len(changes.requests) == 3
    assert (await api.set_remark(ann.token, bob.id, "B")).remark == "B"
    await api.delete_friend(ann.token, bob.id)
    later = await api.sync_contacts(ann.token, since=changes.version)
    assert [(f.id, f.deleted) for f in later.friends] == [(bob.id, True)]
    assert await api.friends(ann.token) == []

    await api.block(ann.token, cat.id)
    assert [b.id for b in await api.blocks(ann.token)] == [cat.id]
    with pytest.raises(HttpError) as blocked:
        await api.request_friend(cat.token, ann.id)
    assert blocked.value.status == 404
    await api.unblock(ann.token, cat.id)
    assert await api.blocks(ann.token) == []


async def test_group_management(cast: Cast) -> None:
    api = cast.api
    ann, bob, cat, dan = [await cast.person(n) for n in ("ann", "bob", "cat", "dan")]
    for other in (bob, cat, dan):
        await cast.befriend(ann, other)
    group = await api.create_group(ann.token, "crew", [bob.id])
    assert group.members is not None
    assert {m.user for m in group.members} == {ann.id, bob.id}
    assert [g.id for g in await api.groups(bob.token)] == [group.id]
    assert (await api.group(bob.token, group.id)).name == "crew"
    renamed = await api.update_group(ann.token, group.id, name="Crew", announcement="hi")
    assert (renamed.name, renamed.announcement) == ("Crew", "hi")
    assert (await api.configure_group(ann.token, group.id, max_members=3)).max_members == 3

    invited = await api.invite(ann.token, group.id, [cat.id])
    assert invited.added == (cat.id,)
    assert invited.seq is not None
    with pytest.raises(HttpError) as full:
        await api.invite(ann.token, group.id, [dan.id])
    assert full.value.status == 409
    page = await api.group_members(ann.token, group.id, limit=2)
    assert (page.members[0].role, page.total, page.more) == ("owner", 3, True)
    only = await api.group_members(ann.token, group.id, users=[cat.id, dan.id])
    assert [m.user for m in only.members] == [cat.id]

    assert await api.set_role(ann.token, group.id, bob.id, "admin") is not None
    assert await api.mute_member(bob.token, group.id, cat.id, 2**41) is not None
    assert await api.set_alias(cat.token, group.id, "kitty") is not None
    muted = await api.group_members(ann.token, group.id, users=[cat.id])
    assert (muted.members[0].alias, muted.members[0].muted_until) == ("kitty", 2**41)
    assert await api.remove_members(bob.token, group.id, [cat.id]) is not None
    assert await api.configure_group(ann.token, group.id, join_approval=True, max_members=10)

    link = await api.create_invite(ann.token, group.id)
    asked = await api.request_to_join(dan.token, group.id, link.token, message="me too")
    assert asked.status == "pending"
    assert [r.id for r in await api.join_requests(bob.token, group.id)] == [asked.id]
    assert (await api.reject_join(bob.token, asked.id)).status == "rejected"
    again = await api.request_to_join(cat.token, group.id, link.token)
    assert (await api.approve_join(ann.token, again.id)).status == "approved"

    avatar = await api.set_group_avatar(bob.token, group.id, png(), content_type="image/png")
    assert (await api.group(cat.token, group.id)).avatar == avatar.avatar
    assert (await api.avatar(avatar.avatar)).startswith(b"\x89PNG")
    assert await api.transfer_group(ann.token, group.id, bob.id) is not None
    assert await api.leave_group(ann.token, group.id) is not None
    assert await api.dismiss_group(bob.token, group.id) is not None
    assert await api.groups(cat.token) == []


async def test_files_and_the_upload_and_send_helper(cast: Cast) -> None:
    api = cast.api
    ann, bob = await cast.person("ann"), await cast.person("bob")
    cid = await cast.befriend(ann, bob)
    image = png(40, 30)
    raw = await api.upload_file(
        ann.token, image, content_type="image/png", kind="image", name="a.png"
    )
    assert (raw.kind, raw.size, raw.width, raw.height, raw.thumbnail) == (
        "image",
        len(image),
        40,
        30,
        True,
    )
    sound = wav(1500)
    voice = await api.upload_file(
        ann.token, sound, content_type="audio/wav", kind="voice", name="v.wav", multipart=True
    )
    assert (voice.name, voice.size, voice.duration_ms) == ("v.wav", len(sound), 1500)

    async def chunks() -> object:
        yield image[:100]
        yield image[100:]

    streamed = await api.upload_file(ann.token, chunks(), content_type="image/png", kind="image")  # type: ignore[arg-type]
    assert streamed.sha256 == raw.sha256
    listing = await api.files(ann.token)
    assert {raw.id, voice.id, streamed.id} <= {f.id for f in listing.files}
    assert listing.used_bytes >= 2 * len(image) + len(sound)
    assert (await api.file(ann.token, raw.id)).content_type == "image/png"
    assert await api.download(ann.token, raw.id) == image
    assert await api.download(ann.token, raw.id, start=1, end=3) == image[1:4]
    assert (await api.download_thumbnail(ann.token, raw.id)).startswith(b"\xff\xd8")
    links = await api.link_file(ann.token, raw.id)
    assert await api.download_link(links.url) == image
    assert links.thumbnail_url is not None
    assert (await api.download_link(links.thumbnail_url)).startswith(b"\xff\xd8")
    mine = await api.set_my_avatar(ann.token, png(8, 8), content_type="image/png", multipart=True)
    assert (await api.me(ann.token)).avatar == mine.avatar
    await api.delete_file(ann.token, streamed.id)
    with pytest.raises(HttpError) as deleted:
        await api.file(ann.token, streamed.id)
    assert deleted.value.status == 404
    with pytest.raises(HttpError):
        await api.begin_direct_upload(ann.token, content_type="image/png", size=10)
    with pytest.raises(HttpError) as local:
        await api.complete_direct_upload(ann.token, raw.id)
    assert local.value.status == 400

    with trio.fail_after(20):
        async with cast.client(ann, "laptop") as client, cast.client(bob, "phone") as phone:
            sent = await client.send_file(
                cid, image, content_type="image/png", kind="image", name="cat.png"
            )
            got = await phone.session.receive_message()
            assert (got.seq, got.kind) == (sent.ack.seq, Kind.IMAGE)
            assert got.body == {
                "file": sent.file.id,
                "mime": "image/png",
                "size": len(image),
                "width": 40,
                "height": 30,
                "name": "cat.png",
            }
            assert await api.download(bob.token, sent.file.id) == image
            ack = await client.send_upload(cid, voice)
            got = await phone.session.receive_message()
            assert (got.seq, got.kind, got.body) == (
                ack.seq,
                Kind.VOICE,
                {"file": voice.id, "mime": "audio/wav", "size": len(sound), "duration_ms": 1500},
            )
            as_file = await client.send_upload(cid, raw, kind=Kind.FILE, thumb=None)
            assert (await phone.session.receive_message()).body["name"] == "a.png"  # type: ignore[index]
            assert as_file.seq == ack.seq + 1


def test_attachment_names_what_the_upload_lacks() -> None:
    from sandcat.client import FileInfo

    video = FileInfo(
        id="v1", kind="video", content_type="video/mp4", name="", size=9, sha256="", created_at=0
    )
    with pytest.raises(ValueError, match="duration_ms"):
        attachment(video)
    kind, body = attachment(video, duration_ms=5, width=2, height=2, thumb="t1")
    assert (kind, body["thumb"], body["duration_ms"]) == (Kind.VIDEO, "t1", 5)
    with pytest.raises(ValueError, match="not a file message kind"):
        attachment(video, kind=Kind.TEXT)
    with pytest.raises(ValueError, match="name"):
        attachment(video, kind=Kind.FILE)


async def test_conversations_history_inbox_and_calls(cast: Cast) -> None:
    api = cast.api
    ann, bob, cat = await cast.person("ann"), await cast.person("bob"), await cast.person("cat")
    cid = await cast.befriend(ann, bob)
    await cast.befriend(ann, cat)
    gcid = await cast.group(ann, [bob, cat])
    with trio.fail_after(20):
        async with cast.client(ann, "laptop") as client:
            acks = [await client.session.send(cid, f"m{n}") for n in range(3)]
            blob = await client.session.send(
                cid, kind=1000, body={"ct": b"\x00\xff", "x": float("nan")}
            )
            await client.session.send(gcid, "hello group")
    listing = await api.conversations(bob.token)
    assert {c.cid for c in listing.conversations} == {cid, gcid}
    direct = next(c for c in listing.conversations if c.cid == cid)
    assert (direct.max_seq, direct.unread, direct.last and direct.last.seq) == (4, 4, 4)
    paged = await api.conversations(bob.token, since=0, limit=1)
    assert paged.more
    assert len(paged.conversations) >= 1
    settings = await api.update_conversation(bob.token, cid, pinned=True, muted=True)
    assert (settings.pinned, settings.muted, settings.hidden) == (True, True, False)

    page = await api.messages(bob.token, cid, after=0, limit=2)
    assert ([m.seq for m in page.msgs], page.more, page.max_seq) == ([1, 2], True, 4)
    latest = await api.messages(bob.token, cid)
    assert [m.body for m in latest.msgs][:3] == [{"text": f"m{n}"} for n in range(3)]
    custom = await api.message(bob.token, blob.mid)
    assert isinstance(custom.body, dict)
    assert custom.body["ct"] == b"\x00\xff"
    await api.hide_messages(bob.token, cid, [acks[0].seq])
    assert [m.seq for m in (await api.messages(bob.token, cid)).msgs] == [2, 3, 4]
    with pytest.raises(HttpError) as too_many:
        await api.hide_messages(bob.token, cid, list(range(1, 202)))
    assert (too_many.value.status, too_many.value.field) == (422, "seqs")

    readers = await api.readers(ann.token, gcid, 1, limit=500)
    assert bob.id in readers.unread
    assert readers.next is None

    inbox = await api.inbox(bob.token)
    assert inbox.notices
    assert inbox.notices[0].type.startswith("friend.")
    assert await api.inbox_ack(bob.token, inbox.max_nseq) == inbox.max_nseq
    assert (await api.inbox(bob.token)).notices == ()
    turn = await api.turn_credentials(ann.token)
    assert turn.username.endswith(f":{ann.id}")
    assert turn.uris == ("turn:127.0.0.1:3478",)


def test_json_values_become_the_msgpack_values_they_stand_for() -> None:
    assert msgpack_value({"a": [{"$bin": "00ff"}, {"$float": "inf"}], "b": {"$bin": 1}}) == {
        "a": [b"\x00\xff", float("inf")],
        "b": {"$bin": 1},
    }


async def test_a_closed_api_refuses_calls(server: Server) -> None:
    api = HttpApi(f"http://127.0.0.1:{server.http_port}")
    await api.aclose()
    await api.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await api.health()
