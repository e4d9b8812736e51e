"""Moderation cannot be undone by rejoining (issue 12, item 7), over real sockets.

The attacks, as they worked before: with ``join_approval`` off (the default)
a muted member left and rejoined unmuted; a removed member rejoined at once;
and a group id seen in a forwarded message's ``forward.cid`` let an outsider
join and read new messages. Now mutes outlast a membership, a removal can ban,
and joining by id needs an invite token.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import connect_websocket_url

from sandcat.protocol import Err, ErrorCode, Msg, Ok, Ping, Pull, Send
from tests.gateway.raw import TIMEOUT_S, Connect, Raw, ok_body
from tests.scene import Account, Api

FAR = 2**53 - 1


@pytest.fixture
async def connect(nursery: trio.Nursery, ws_url: str) -> AsyncIterator[Connect]:
    """Open authenticated raw connections, all closed at teardown."""
    opened: list[Raw] = []

    async def open_raw(token: str, *, device: str = "d1") -> Raw:
        with trio.fail_after(TIMEOUT_S):
            ws = await connect_websocket_url(nursery, ws_url, subprotocols=["sandcat.v1"])
        raw = Raw(ws)
        opened.append(raw)
        await raw.hello(token, device)
        return raw

    yield open_raw
    with trio.move_on_after(TIMEOUT_S):
        for raw in opened:
            await raw.ws.aclose()
            await raw.ws._close_stream()


async def _post(api: Api, who: Account, path: str, body: object = None) -> httpx.Response:
    return await api.http.post(path, json=body if body is not None else {}, headers=api.auth(who))


async def _send(conn: Raw, cid: str, text: str) -> object:
    return await conn.request(Send(rid=conn.rid(), cid=cid, cmid=text, kind=1, body={"text": text}))


async def _max_seq(conn: Raw, cid: str) -> int:
    return int(ok_body(await conn.request(Pull(rid=conn.rid(), cid=cid, after=0)))["max_seq"])


async def _invite_link(api: Api, who: Account, gid: str, **options: int) -> dict[str, Any]:
    reply = await _post(api, who, f"/api/v1/groups/{gid}/invites", options)
    assert reply.status_code == 201, reply.text
    return dict(reply.json()["invite"])


async def _join(api: Api, who: Account, gid: str, token: str | None) -> httpx.Response:
    body = {} if token is None else {"token": token}
    return await _post(api, who, f"/api/v1/groups/{gid}/requests", body)


def _refusal(reply: httpx.Response, status: int, reason: str | None = None) -> None:
    assert reply.status_code == status, reply.text
    if reason is not None:
        assert reply.json()["error"]["reason"] == reason, reply.text


async def _muted(conn: Raw, cid: str) -> None:
    """A SEND is refused ``forbidden`` and takes no seq."""
    before = await _max_seq(conn, cid)
    refused = await _send(conn, cid, f"try-{time.monotonic_ns()}")
    assert isinstance(refused, Err), refused
    assert refused.code is ErrorCode.FORBIDDEN
    assert await _max_seq(conn, cid) == before


async def test_a_muted_member_who_leaves_and_rejoins_is_still_muted(
    api: Api, connect: Connect
) -> None:
    owner, muted, friend = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, muted)
    await api.befriend(owner, friend)
    await api.befriend(friend, muted)
    cid = await api.group(owner, [muted, friend])
    gid = cid[2:]
    reply = await _post(api, owner, f"/api/v1/groups/{gid}/mutes", {"user": muted.id, "until": FAR})
    assert reply.status_code == 200, reply.text
    conn = await connect(muted.token)
    await _muted(conn, cid)

    # Leave, and come back through a friend's direct invitation: still muted.
    assert (await _post(api, muted, f"/api/v1/groups/{gid}/leave")).status_code == 200
    reply = await _post(api, friend, f"/api/v1/groups/{gid}/members", {"users": [muted.id]})
    assert reply.json()["added"] == [muted.id], reply.text
    await _muted(conn, cid)
    members = await api.http.get(
        f"/api/v1/groups/{gid}/members?users={muted.id}", headers=api.auth(owner)
    )
    assert members.json()["members"][0]["muted_until"] == FAR

    # Leave, and come back with an invite link: still muted.
    link = await _invite_link(api, owner, gid)
    assert (await _post(api, muted, f"/api/v1/groups/{gid}/leave")).status_code == 200
    reply = await _join(api, muted, gid, link["token"])
    assert reply.json()["request"]["status"] == "approved", reply.text
    await _muted(conn, cid)

    # The mute still ends when it was set to end.
    reply = await _post(api, owner, f"/api/v1/groups/{gid}/mutes", {"user": muted.id, "until": 0})
    assert reply.status_code == 200, reply.text
    assert isinstance(await _send(conn, cid, "free again"), Ok)


async def test_a_removed_and_banned_member_cannot_rejoin_or_be_reinvited(
    api: Api, connect: Connect
) -> None:
    owner, member, friend = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, member)
    await api.befriend(owner, friend)
    await api.befriend(friend, member)
    cid = await api.group(owner, [member, friend])
    gid = cid[2:]
    conn = await connect(member.token)
    watcher = await connect(owner.token)

    reply = await _post(
        api, owner, f"/api/v1/groups/{gid}/members/remove", {"users": [member.id], "ban": True}
    )
    assert reply.status_code == 200, reply.text
    removal = reply.json()["seq"]
    _refusal(
        await _post(api, friend, f"/api/v1/groups/{gid}/members", {"users": [member.id]}),
        403,
        "banned",
    )
    _refusal(
        await _post(api, owner, f"/api/v1/groups/{gid}/members", {"users": [member.id]}),
        403,
        "banned",
    )
    link = await _invite_link(api, owner, gid)
    _refusal(await _join(api, member, gid, link["token"]), 403, "banned")
    assert await _max_seq(watcher, cid) == removal  # each refusal took no seq

    push = await conn.push()
    assert isinstance(push, Msg)
    assert isinstance(push.body, dict)
    assert (push.seq, push.body["event"]) == (removal, "members.banned")
    assert push.body["data"] == {"users": [member.id], "removed": [member.id], "by": owner.id}
    refused = await _send(conn, cid, "still here?")
    assert isinstance(refused, Err)
    assert refused.code is ErrorCode.FORBIDDEN
    assert await _max_seq(conn, cid) == removal  # reads nothing after its removal

    bans = await api.http.get(f"/api/v1/groups/{gid}/bans", headers=api.auth(owner))
    assert [ban["user"] for ban in bans.json()["bans"]] == [member.id]
    reply = await _post(api, owner, f"/api/v1/groups/{gid}/bans/remove", {"users": [member.id]})
    assert reply.status_code == 200, reply.text
    reply = await _join(api, member, gid, link["token"])
    assert reply.json()["request"]["status"] == "approved", reply.text


async def test_an_outsider_with_only_the_group_id_cannot_join(api: Api, connect: Connect) -> None:
    owner, member, outsider = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, member)
    direct = await api.befriend(member, outsider)
    cid = await api.group(owner, [member])
    gid = cid[2:]
    o, m, x = await connect(owner.token), await connect(member.token), await connect(outsider.token)
    sent = ok_body(await _send(o, cid, "group secret"))
    await m.push()

    # The member forwards it to the outsider, who learns the group's cid.
    forward = Send(
        rid=m.rid(),
        cid=direct,
        cmid="fwd",
        kind=1,
        body={"text": "group secret"},
        forward={"cid": cid, "seq": sent["seq"]},
    )
    assert isinstance(await m.request(forward), Ok)
    push = await x.push()
    assert isinstance(push, Msg)
    assert push.forward is not None
    assert push.forward["cid"] == cid

    _refusal(await _join(api, outsider, gid, None), 422)
    _refusal(await _join(api, outsider, gid, "made-up-token"), 404)
    link = await _invite_link(api, owner, str(await _other_group(api, owner)))
    _refusal(await _join(api, outsider, gid, link["token"]), 404)  # another group's token
    assert (
        await api.http.get(f"/api/v1/groups/{gid}", headers=api.auth(outsider))
    ).status_code == 404

    ok_body(await _send(o, cid, "after"))
    assert isinstance(await x.request(Ping(rid=x.rid())), Ok)
    assert [p for p in x.pushes if isinstance(p, Msg) and p.cid == cid] == []
    refused = await x.request(Pull(rid=x.rid(), cid=cid, after=0))
    assert isinstance(refused, Err)
    assert refused.code is ErrorCode.FORBIDDEN


async def _other_group(api: Api, owner: Account) -> str:
    cid = await api.group(owner, [], name="other")
    return cid[2:]


async def test_a_valid_token_admits_and_under_join_approval_files_a_request(
    api: Api, connect: Connect
) -> None:
    owner, guest, asker = await api.account(), await api.account(), await api.account()
    cid = await api.group(owner, [])
    gid = cid[2:]
    link = await _invite_link(api, owner, gid)
    reply = await _join(api, guest, gid, link["token"])
    assert reply.status_code == 201, reply.text
    assert reply.json()["request"]["status"] == "approved"
    g = await connect(guest.token)
    o = await connect(owner.token)
    ok_body(await _send(o, cid, "welcome"))
    push = await g.push()
    assert isinstance(push, Msg)
    assert push.cid == cid

    reply = await api.http.patch(
        f"/api/v1/groups/{gid}/settings", json={"join_approval": True}, headers=api.auth(owner)
    )
    assert reply.status_code == 200, reply.text
    seq = await _max_seq(o, cid)
    reply = await _join(api, asker, gid, link["token"])
    assert reply.status_code == 201, reply.text
    request = reply.json()["request"]
    assert request["status"] == "pending"
    assert await _max_seq(o, cid) == seq
    assert (await api.http.get(f"/api/v1/groups/{gid}", headers=api.auth(asker))).status_code == 404
    reply = await _post(api, owner, f"/api/v1/groups/requests/{request['id']}/approve")
    assert reply.json()["request"]["status"] == "approved", reply.text
    assert (await api.http.get(f"/api/v1/groups/{gid}", headers=api.auth(asker))).status_code == 200


async def test_revoked_expired_and_used_up_tokens_are_refused(api: Api, connect: Connect) -> None:
    owner = await api.account()
    a, b, c, d = [await api.account() for _ in range(4)]
    cid = await api.group(owner, [])
    gid = cid[2:]
    watcher = await connect(owner.token)

    revoked = await _invite_link(api, owner, gid)
    reply = await _post(
        api, owner, f"/api/v1/groups/{gid}/invites/revoke", {"invite": revoked["id"]}
    )
    assert reply.status_code == 200, reply.text

    soon = int(time.time() * 1000) + 300
    expiring = await _invite_link(api, owner, gid, expires_at=soon)
    once = await _invite_link(api, owner, gid, max_uses=1)
    assert (await _join(api, a, gid, once["token"])).status_code == 201
    await trio.sleep(max(0.0, soon / 1000 - time.time()) + 0.2)

    seq = await _max_seq(watcher, cid)
    _refusal(await _join(api, b, gid, revoked["token"]), 403, "invite_revoked")
    _refusal(await _join(api, c, gid, expiring["token"]), 403, "invite_expired")
    _refusal(await _join(api, d, gid, once["token"]), 403, "invite_used_up")
    assert await _max_seq(watcher, cid) == seq
    for outsider in (b, c, d):
        reply = await api.http.get(f"/api/v1/groups/{gid}", headers=api.auth(outsider))
        assert reply.status_code == 404
    listed = await api.http.get(f"/api/v1/groups/{gid}/invites", headers=api.auth(owner))
    assert listed.json()["invites"] == []  # none of them works any more
