"""Group management end to end: HTTP changes, their system messages and notices
over real sockets, and membership enforced on every SEND and PULL.

Absence of a push is checked with a PING round trip (see test_messaging).
"""

from __future__ import annotations

from typing import Any

import httpx

from sandcat.protocol import Err, ErrorCode, Msg, Notify, Ok, Ping, Pull, Send
from tests.files.media import png
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


async def _send(conn: Raw, cid: str, cmid: str) -> object:
    return await conn.request(Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=1, body={"text": cmid}))


async def _no_push(conn: Raw) -> None:
    assert isinstance(await conn.request(Ping(rid=conn.rid())), Ok)
    assert conn.pushes == []


async def _system(conn: Raw, event: str) -> Msg:
    """The next push, which must be the system message ``event``."""
    push = await conn.push()
    assert isinstance(push, Msg), push
    assert push.kind == 9
    assert isinstance(push.body, dict)
    assert push.body["event"] == event, push.body
    return push


async def _notice(conn: Raw, type_: str) -> Notify:
    push = await conn.push()
    assert isinstance(push, Notify), push
    assert push.type == type_
    return push


async def _max_seq(conn: Raw, cid: str) -> int:
    return int(ok_body(await conn.request(Pull(rid=conn.rid(), cid=cid, after=0)))["max_seq"])


async def _post(api: Api, who: Account, path: str, body: object = None) -> httpx.Response:
    return await api.http.post(path, json=body or {}, headers=api.auth(who))


async def test_changes_reach_every_device_and_removal_ends_delivery(
    api: Api, connect: Connect
) -> None:
    owner, member, guest = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, member)
    await api.befriend(owner, guest)
    cid = await api.group(owner, [member])
    gid = cid[2:]
    phone, desk = (
        await connect(owner.token, device="phone"),
        await connect(owner.token, device="desk"),
    )
    m, g = await connect(member.token), await connect(guest.token)

    reply = await _post(api, owner, f"/api/v1/groups/{gid}/members", {"users": [guest.id]})
    assert reply.status_code == 200, reply.text
    seq = reply.json()["seq"]
    for conn in (phone, desk, m, g):
        push = await _system(conn, "members.joined")
        assert (push.seq, push.sender, push.body["data"]["users"]) == (seq, owner.id, [guest.id])
    notice = await _notice(g, "group.invited")
    assert notice.data == {"group": gid, "cid": cid, "by": owner.id}

    sent = ok_body(await _send(g, cid, "hello"))
    for conn in (phone, desk, m):
        push = await conn.push()
        assert isinstance(push, Msg)
        assert (push.seq, push.sender) == (sent["seq"], guest.id)

    reply = await _post(api, owner, f"/api/v1/groups/{gid}/members/remove", {"users": [guest.id]})
    assert reply.status_code == 200, reply.text
    removal = reply.json()["seq"]
    for conn in (phone, desk, m, g):
        assert (await _system(conn, "members.removed")).seq == removal
    await _notice(g, "group.removed")

    later = ok_body(await _send(m, cid, "after"))
    assert (await phone.push()).seq == later["seq"]  # type: ignore[attr-defined]
    await _no_push(g)
    refused = await _send(g, cid, "sneak")
    assert isinstance(refused, Err)
    assert refused.code is ErrorCode.FORBIDDEN
    page = ok_body(await g.request(Pull(rid=g.rid(), cid=cid, after=0)))
    assert page["max_seq"] == removal
    assert [entry["seq"] for entry in page["msgs"]][-1] == removal
    assert await _max_seq(m, cid) == later["seq"]  # the refused send took no seq
    assert (await api.http.get(f"/api/v1/groups/{gid}", headers=api.auth(guest))).status_code == 404


async def test_mutes_and_mute_all_refuse_sends_with_no_seq(api: Api, connect: Connect) -> None:
    owner, admin, member = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, admin)
    await api.befriend(owner, member)
    cid = await api.group(owner, [admin, member])
    gid = cid[2:]
    reply = await _post(
        api, owner, f"/api/v1/groups/{gid}/roles", {"user": admin.id, "role": "admin"}
    )
    assert reply.status_code == 200, reply.text
    a, m = await connect(admin.token), await connect(member.token)
    far = 2**53 - 1
    reply = await _post(
        api, admin, f"/api/v1/groups/{gid}/mutes", {"user": member.id, "until": far}
    )
    assert reply.status_code == 200, reply.text
    await _system(m, "member.muted")
    await _notice(m, "group.muted")
    before = await _max_seq(a, cid)
    refused = await _send(m, cid, "x")
    assert isinstance(refused, Err)
    assert refused.code is ErrorCode.FORBIDDEN
    assert await _max_seq(a, cid) == before
    reply = await _post(api, admin, f"/api/v1/groups/{gid}/mutes", {"user": member.id, "until": 0})
    assert reply.status_code == 200
    assert isinstance(await _send(m, cid, "y"), Ok)
    reply = await api.http.patch(
        f"/api/v1/groups/{gid}/settings", json={"mute_all": True}, headers=api.auth(admin)
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["group"]["mute_all"] is True
    assert isinstance(await _send(m, cid, "z"), Err)
    assert isinstance(await _send(a, cid, "w"), Ok)


async def test_refusals_over_http_store_nothing(api: Api, connect: Connect) -> None:
    o, a, m, x = [await api.account() for _ in range(4)]
    for friend in (a, m, x):
        await api.befriend(o, friend)
    cid = await api.group(o, [a, m])
    gid = cid[2:]
    await _post(api, o, f"/api/v1/groups/{gid}/roles", {"user": a.id, "role": "admin"})
    watcher = await connect(o.token)
    seq = await _max_seq(watcher, cid)
    cases: list[tuple[Account, str, str, Any, int]] = [
        (m, "POST", f"/api/v1/groups/{gid}/members/remove", {"users": [a.id]}, 403),
        (a, "POST", f"/api/v1/groups/{gid}/members/remove", {"users": [o.id]}, 403),
        (a, "DELETE", f"/api/v1/groups/{gid}", None, 403),
        (a, "POST", f"/api/v1/groups/{gid}/transfer", {"to": m.id}, 403),
        (a, "POST", f"/api/v1/groups/{gid}/roles", {"user": m.id, "role": "admin"}, 403),
        (m, "PATCH", f"/api/v1/groups/{gid}", {"name": "mine"}, 403),
        (m, "PATCH", f"/api/v1/groups/{gid}/settings", {"mute_all": True}, 403),
        (m, "POST", f"/api/v1/groups/{gid}/mutes", {"user": a.id, "until": 2**40}, 403),
        (m, "GET", f"/api/v1/groups/{gid}/requests", None, 403),
        (x, "POST", f"/api/v1/groups/{gid}/members", {"users": [x.id]}, 404),
        (x, "GET", f"/api/v1/groups/{gid}/members", None, 404),
        (x, "POST", f"/api/v1/groups/{gid}/leave", None, 404),
        (o, "POST", "/api/v1/groups/nope/members", {"users": [x.id]}, 404),
        (o, "POST", "/api/v1/groups/requests/nope/approve", None, 404),
        (o, "POST", f"/api/v1/groups/{gid}/leave", None, 409),
        (o, "POST", f"/api/v1/groups/{gid}/members", {"users": [m.id]}, 409),
        (o, "POST", f"/api/v1/groups/{gid}/members", {"users": ["bad id"]}, 422),
        (o, "POST", f"/api/v1/groups/{gid}/members", {"users": []}, 422),
        (o, "POST", f"/api/v1/groups/{gid}/roles", {"user": m.id, "role": "owner"}, 422),
        (o, "POST", f"/api/v1/groups/{gid}/mutes", {"user": m.id, "until": -1}, 422),
        (o, "PATCH", f"/api/v1/groups/{gid}", {"name": ""}, 422),
        (o, "PATCH", f"/api/v1/groups/{gid}", {"owner": x.id}, 422),
        (o, "PATCH", f"/api/v1/groups/{gid}/settings", {"max_members": 10**9}, 422),
        (o, "PATCH", f"/api/v1/groups/{gid}/settings", {"mute_all": "yes"}, 422),
        (o, "GET", f"/api/v1/groups/{gid}/members?limit=0", None, 422),
        (m, "POST", f"/api/v1/groups/{gid}/bans", {"users": [x.id]}, 403),
        (a, "POST", f"/api/v1/groups/{gid}/bans", {"users": [o.id]}, 403),
        (o, "POST", f"/api/v1/groups/{gid}/bans", {"users": [o.id]}, 409),
        (o, "POST", f"/api/v1/groups/{gid}/bans", {"users": ["nobody"]}, 404),
        (o, "POST", f"/api/v1/groups/{gid}/bans/remove", {"users": [x.id]}, 404),
        (m, "GET", f"/api/v1/groups/{gid}/bans", None, 403),
        (x, "GET", f"/api/v1/groups/{gid}/bans", None, 404),
        (o, "GET", f"/api/v1/groups/{gid}/bans?limit=201", None, 422),
        (o, "POST", f"/api/v1/groups/{gid}/members/remove", {"users": [m.id], "ban": 1}, 422),
        (x, "POST", f"/api/v1/groups/{gid}/invites", {}, 404),
        (x, "GET", f"/api/v1/groups/{gid}/invites", None, 404),
        (o, "POST", f"/api/v1/groups/{gid}/invites", {"max_uses": 0}, 422),
        (o, "POST", f"/api/v1/groups/{gid}/invites", {"max_uses": 100_001}, 422),
        (o, "POST", f"/api/v1/groups/{gid}/invites", {"expires_at": 1}, 422),
        (o, "POST", f"/api/v1/groups/{gid}/invites/revoke", {"invite": "nope"}, 404),
        (x, "POST", f"/api/v1/groups/{gid}/requests", {}, 422),
        (x, "POST", f"/api/v1/groups/{gid}/requests", {"token": "nope"}, 404),
    ]
    for who, method, path, body, status in cases:
        reply = await api.http.request(method, path, json=body, headers=api.auth(who))
        assert reply.status_code == status, (method, path, reply.text)
    assert await _max_seq(watcher, cid) == seq
    await _no_push(watcher)


async def test_join_requests_transfer_leave_and_dismiss(api: Api, connect: Connect) -> None:
    o, m, s, r = [await api.account() for _ in range(4)]
    await api.befriend(o, m)
    cid = await api.group(o, [m])
    gid = cid[2:]
    reply = await api.http.patch(
        f"/api/v1/groups/{gid}/settings", json={"join_approval": True}, headers=api.auth(o)
    )
    assert reply.json()["group"]["join_approval"] is True
    owner = await connect(o.token)
    link = await _post(api, o, f"/api/v1/groups/{gid}/invites")
    token = link.json()["invite"]["token"]
    reply = await _post(api, s, f"/api/v1/groups/{gid}/requests", {"message": "hi", "token": token})
    assert reply.status_code == 201, reply.text
    request = reply.json()["request"]
    assert (request["status"], request["message"]) == ("pending", "hi")
    assert (await _notice(owner, "group.join_requested")).data["user"] == s.id
    listed = await api.http.get(f"/api/v1/groups/{gid}/requests", headers=api.auth(o))
    assert [r["id"] for r in listed.json()["requests"]] == [request["id"]]
    stranger = await connect(s.token)
    reply = await _post(api, o, f"/api/v1/groups/requests/{request['id']}/approve")
    assert reply.json()["request"]["status"] == "approved"
    for conn in (owner, stranger):
        await _system(conn, "members.joined")
    await _notice(stranger, "group.join_approved")
    reply = await _post(api, r, f"/api/v1/groups/{gid}/requests", {"token": token})
    assert reply.json()["request"]["status"] == "pending"
    await _notice(owner, "group.join_requested")
    rejected = await _post(
        api, o, f"/api/v1/groups/requests/{reply.json()['request']['id']}/reject"
    )
    assert rejected.json()["request"]["status"] == "rejected"
    reply = await api.http.patch(
        f"/api/v1/groups/{gid}", json={"name": "renamed", "description": "d"}, headers=api.auth(o)
    )
    assert (reply.json()["group"]["name"], reply.json()["group"]["description"]) == ("renamed", "d")
    assert (await _system(owner, "group.updated")).body["data"]["name"] == "renamed"
    page = await api.http.get(f"/api/v1/groups/{gid}/members?limit=2", headers=api.auth(s))
    assert page.json()["total"] == 3
    assert page.json()["more"] is True
    assert [member["user"] for member in page.json()["members"]] == [o.id, m.id]
    some = await api.http.get(
        f"/api/v1/groups/{gid}/members?users={s.id},{r.id}", headers=api.auth(m)
    )
    assert [member["user"] for member in some.json()["members"]] == [s.id]
    bad = await api.http.get(f"/api/v1/groups/{gid}/members?users=", headers=api.auth(m))
    assert bad.status_code == 422

    reply = await api.http.put(
        f"/api/v1/groups/{gid}/alias", json={"alias": "new one"}, headers=api.auth(s)
    )
    assert reply.status_code == 200
    assert (await _system(owner, "member.alias")).body["data"] == {"user": s.id, "alias": "new one"}
    reply = await _post(api, s, f"/api/v1/groups/{gid}/leave")
    assert reply.status_code == 200
    await _system(owner, "member.left")
    reply = await _post(api, o, f"/api/v1/groups/{gid}/transfer", {"to": m.id})
    assert reply.status_code == 200
    await _system(owner, "owner.transferred")
    reply = await api.http.delete(f"/api/v1/groups/{gid}", headers=api.auth(m))
    assert reply.status_code == 200
    await _system(owner, "group.dismissed")
    await _notice(owner, "group.dismissed")
    assert (await api.http.get("/api/v1/groups", headers=api.auth(o))).json()["groups"] == []
    refused = await _send(owner, cid, "late")
    assert isinstance(refused, Err)
    assert refused.code is ErrorCode.FORBIDDEN


async def test_put_avatar_writes_the_same_message_as_patch_and_unchanged_fields_none(
    api: Api, connect: Connect
) -> None:
    owner, member = await api.account(), await api.account()
    await api.befriend(owner, member)
    cid = await api.group(owner, [member])
    gid = cid[2:]
    m = await connect(member.token)
    before = await _max_seq(m, cid)

    reply = await api.http.put(
        f"/api/v1/groups/{gid}/avatar",
        content=png(),
        headers={**api.auth(owner), "Content-Type": "image/png"},
    )
    assert reply.status_code == 200, reply.text
    avatar = reply.json()["avatar"]
    push = await _system(m, "group.updated")
    assert (push.seq, push.sender) == (before + 1, owner.id)
    assert push.body["data"] == {"avatar": avatar, "by": owner.id}

    # Re-sending the same avatar changes nothing: no message, no seq.
    reply = await api.http.patch(
        f"/api/v1/groups/{gid}", json={"avatar": avatar}, headers=api.auth(owner)
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["group"]["avatar"] == avatar
    await _no_push(m)
    assert await _max_seq(m, cid) == before + 1
    # Only what differs is listed.
    reply = await api.http.patch(
        f"/api/v1/groups/{gid}", json={"avatar": avatar, "name": "new"}, headers=api.auth(owner)
    )
    assert reply.status_code == 200, reply.text
    assert (await _system(m, "group.updated")).body["data"] == {"name": "new", "by": owner.id}

    # A dismissed group takes no avatar.
    assert (
        await api.http.delete(f"/api/v1/groups/{gid}", headers=api.auth(owner))
    ).status_code == 200
    await _system(m, "group.dismissed")
    await _notice(m, "group.dismissed")
    reply = await api.http.put(
        f"/api/v1/groups/{gid}/avatar",
        content=png(),
        headers={**api.auth(owner), "Content-Type": "image/png"},
    )
    assert reply.status_code == 404, reply.text
    await _no_push(m)
