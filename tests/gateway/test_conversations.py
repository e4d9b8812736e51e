"""Conversations on the server over real sockets: several users, two devices each.

SYNC's grown CONV (unread, mention, hidden, cleared_seq), CONV_SET with
CONV_STATE to the other device, read receipts on and off, READERS in a
group, the HTTP twins, and refusals that change nothing. Absence of a push
is checked with a PING round trip (see test_messaging.py).
"""

from __future__ import annotations

from typing import Any

import msgpack
import trio

from sandcat.protocol import (
    ConvSet,
    ConvState,
    Err,
    ErrorCode,
    Msg,
    Ping,
    Pull,
    Read,
    Readers,
    ReadState,
    Send,
    Sync,
    encode,
)
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


async def _ok(conn: Raw, frame: object) -> dict[str, Any]:
    return ok_body(await conn.request(frame))


async def _err(conn: Raw, frame: object) -> ErrorCode:
    reply = await conn.request(frame)
    assert isinstance(reply, Err), reply
    return reply.code


async def _send(conn: Raw, cid: str, cmid: str, **extra: Any) -> int:
    frame = Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=1, body={"text": cmid}, **extra)
    return int((await _ok(conn, frame))["seq"])


async def _conv(conn: Raw, cid: str, since: int | None = None) -> dict[str, Any] | None:
    body = await _ok(conn, Sync(rid=conn.rid(), since=since))
    found = [c for c in body["convs"] if c["cid"] == cid]
    return found[0] if found else None


async def _version(conn: Raw) -> int:
    return int((await _ok(conn, Sync(rid=conn.rid())))["version"])


async def _pushes(conn: Raw) -> list[object]:
    """Every push so far (a PING round trip flushes them), taken out of ``conn``."""
    await _ok(conn, Ping(rid=conn.rid()))
    pushes, conn.pushes = conn.pushes, []
    return pushes


async def _devices(api: Api, connect: Connect, account: Account) -> tuple[Raw, Raw]:
    second = await api.login(account.username, account.password, "d2")
    return await connect(account.token, device="d1"), await connect(second.token, device="d2")


async def test_unread_last_and_mentions_follow_sends_and_reads(api: Api, connect: Connect) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    await api.befriend(alice, bob)
    await api.befriend(alice, carol)
    cid = await api.group(alice, [bob, carol])
    a1 = await connect(alice.token)
    b1, b2 = await _devices(api, connect, bob)
    c1 = await connect(carol.token)
    await _send(a1, cid, "1")
    await _send(a1, cid, "2", mentions=(bob.id,))
    await _send(c1, cid, "3")
    bob_view = await _conv(b2, cid)
    assert bob_view is not None
    assert (bob_view["unread"], bob_view["mention"], bob_view["read_seq"]) == (3, True, 0)
    assert (bob_view["hidden"], bob_view["cleared_seq"], bob_view["last"]["seq"]) == (False, 0, 3)
    carol_view = await _conv(c1, cid)
    assert carol_view is not None
    assert (carol_view["unread"], carol_view["mention"], carol_view["read_seq"]) == (0, False, 3)
    # Reading past the mention on one device clears it on the other, with READ_STATE.
    await _ok(b1, Read(rid=b1.rid(), cid=cid, seq=2))
    assert [p for p in await _pushes(b2) if isinstance(p, ReadState)] == [
        ReadState(cid=cid, user=bob.id, seq=2)
    ]
    bob_view = await _conv(b2, cid)
    assert bob_view is not None
    assert (bob_view["unread"], bob_view["mention"]) == (1, False)
    # Group members are not told of each other's reads.
    assert [p for p in await _pushes(a1) if isinstance(p, ReadState)] == []


async def test_settings_reach_the_other_device_and_incremental_sync(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    a1, a2 = await _devices(api, connect, alice)
    b1 = await connect(bob.token)
    await _send(b1, cid, "1")
    await _send(b1, cid, "2")
    since = await _version(a2)
    for conn in (a1, a2, b1):
        await _pushes(conn)
    reply = await _ok(a1, ConvSet(rid=a1.rid(), cid=cid, pinned=True, muted=True))
    assert reply == {"cid": cid, "pinned": True, "muted": True, "hidden": False, "cleared_seq": 0}
    assert await _pushes(a2) == [
        ConvState(cid=cid, pinned=True, muted=True, hidden=False, cleared_seq=0)
    ]
    assert await _pushes(a1) == []
    assert await _pushes(b1) == []
    changed = await _conv(a2, cid, since=since)
    assert changed is not None
    assert (changed["pinned"], changed["muted"], changed["unread"]) == (True, True, 2)
    # Muted still delivers.
    await _send(b1, cid, "3")
    assert [p.seq for p in await _pushes(a2) if isinstance(p, Msg)] == [3]
    # Bob's list did not change for Alice's settings.
    bob_view = await _conv(b1, cid)
    assert bob_view is not None
    assert (bob_view["pinned"], bob_view["muted"]) == (False, False)
    # Hide until the next message; clear history for me.
    await _ok(a2, ConvSet(rid=a2.rid(), cid=cid, hidden=True, clear=True))
    assert [p for p in await _pushes(a1) if not isinstance(p, Msg)] == [
        ConvState(cid=cid, pinned=True, muted=True, hidden=True, cleared_seq=3)
    ]
    cleared = await _conv(a1, cid)
    assert cleared is not None
    assert (cleared["hidden"], cleared["unread"], cleared["min_seq"]) == (True, 0, 4)
    assert "last" not in cleared
    pulled = await _ok(a1, Pull(rid=a1.rid(), cid=cid, after=0))
    assert (pulled["msgs"], pulled["min_seq"], pulled["max_seq"]) == ([], 4, 3)
    await _send(b1, cid, "4")
    back = await _conv(a1, cid)
    assert back is not None
    assert (back["hidden"], back["unread"], back["last"]["seq"]) == (False, 1, 4)
    # An unchanged setting is answered and pushed to nobody.
    await _ok(a1, ConvSet(rid=a1.rid(), cid=cid, pinned=True))
    assert [p for p in await _pushes(a2) if isinstance(p, ConvState)] == []


async def test_read_receipts_reach_the_peer_only_when_both_allow(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    a1 = await connect(alice.token)
    b1, b2 = await _devices(api, connect, bob)
    for n in range(3):
        await _send(a1, cid, str(n))
    await _pushes(b2)
    await _ok(b1, Read(rid=b1.rid(), cid=cid, seq=1))
    assert await _pushes(a1) == [ReadState(cid=cid, user=bob.id, seq=1)]
    seen = await _conv(a1, cid)
    assert seen is not None
    assert seen["peer_read_seq"] == 1
    assert await _pushes(b2) == [ReadState(cid=cid, user=bob.id, seq=1)]
    reply = await api.http.patch(
        "/api/v1/users/me", json={"read_receipts": False}, headers=api.auth(bob)
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["user"]["read_receipts"] is False
    await _ok(b1, Read(rid=b1.rid(), cid=cid, seq=2))
    assert await _pushes(a1) == []
    unseen = await _conv(a1, cid)
    assert unseen is not None
    assert "peer_read_seq" not in unseen
    # Bob's own other device still follows his reads.
    assert await _pushes(b2) == [ReadState(cid=cid, user=bob.id, seq=2)]
    # Reciprocal: Alice's reads do not reach Bob either.
    await _send(b1, cid, "b")
    await _pushes(a1)
    await _ok(a1, Read(rid=a1.rid(), cid=cid, seq=4))
    assert [p for p in await _pushes(b2) if isinstance(p, ReadState)] == []


async def test_readers_in_a_group_and_over_http(api: Api, connect: Connect) -> None:
    owner = await api.account()
    members = [await api.account() for _ in range(3)]
    for member in members:
        await api.befriend(owner, member)
    cid = await api.group(owner, members)
    o1 = await connect(owner.token)
    seq = await _send(o1, cid, "hello")
    m0 = await connect(members[0].token)
    await _ok(m0, Read(rid=m0.rid(), cid=cid, seq=seq))
    everyone = sorted([owner.id, *(m.id for m in members)])
    reply = await _ok(o1, Readers(rid=o1.rid(), cid=cid, seq=seq))
    assert sorted(reply["read"]) == sorted([owner.id, members[0].id])
    assert sorted(reply["unread"]) == sorted([members[1].id, members[2].id])
    assert "next" not in reply
    first = await _ok(o1, Readers(rid=o1.rid(), cid=cid, seq=seq, limit=3))
    assert sorted(first["read"] + first["unread"]) == everyone[:3]
    assert first["next"] == everyone[2]
    rest = await _ok(o1, Readers(rid=o1.rid(), cid=cid, seq=seq, after=first["next"], limit=3))
    assert rest["read"] + rest["unread"] == everyone[3:]
    http = await api.http.get(
        f"/api/v1/conversations/{cid}/readers",
        params={"seq": seq, "limit": 2},
        headers=api.auth(members[1]),
    )
    assert http.status_code == 200, http.text
    assert sorted(http.json()["read"] + http.json()["unread"]) == everyone[:2]
    assert http.json()["next"] == everyone[1]


async def test_http_list_and_patch_match_sync_and_push_conv_state(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    a1, a2 = await _devices(api, connect, alice)
    b1 = await connect(bob.token)
    await _send(b1, cid, "1", mentions=(alice.id,))
    custom = Send(
        rid=b1.rid(), cid=cid, cmid="bin", kind=1000, body={"ct": b"\x00\xff", "k": [b"\x01"]}
    )
    await _ok(b1, custom)
    group = await api.group(bob, [alice])
    listed = await api.http.get("/api/v1/conversations", headers=api.auth(alice))
    assert listed.status_code == 200, listed.text
    [conv] = [c for c in listed.json()["conversations"] if c["cid"] == cid]
    assert (conv["peer"], conv["unread"], conv["mention"]) == (bob.id, 2, True)
    [in_group] = [c for c in listed.json()["conversations"] if c["cid"] == group]
    assert (in_group["group"], in_group["unread"], "last" not in in_group) == (group[2:], 0, True)
    assert conv["last"]["body"] == {"ct": {"$bin": "00ff"}, "k": [{"$bin": "01"}]}
    version = listed.json()["version"]
    await _pushes(a1)
    await _pushes(a2)
    patched = await api.http.patch(
        f"/api/v1/conversations/{cid}", json={"pinned": True}, headers=api.auth(alice)
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["conversation"]["pinned"] is True
    state = ConvState(cid=cid, pinned=True, muted=False, hidden=False, cleared_seq=0)
    assert await _pushes(a1) == [state]
    assert await _pushes(a2) == [state]
    since = await api.http.get(
        "/api/v1/conversations", params={"since": version}, headers=api.auth(alice)
    )
    assert [c["cid"] for c in since.json()["conversations"]] == [cid]
    ws_view = await _conv(a1, cid)
    assert ws_view is not None
    assert {k: v for k, v in ws_view.items() if k != "last"} == {
        k: v for k, v in since.json()["conversations"][0].items() if k != "last"
    }


async def test_refusals_change_nothing_and_the_connection_keeps_serving(
    api: Api, connect: Connect, ws_url: str
) -> None:
    alice, bob, eve = await api.account(), await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    await api.befriend(alice, eve)
    group = await api.group(alice, [bob])
    a1, a2 = await _devices(api, connect, alice)
    e1 = await connect(eve.token)
    await _send(a1, cid, "1")
    before = await _version(a1)
    await _pushes(a2)
    # Not a member, and a conversation that does not exist: the same answer.
    for target in (cid, group, "g:nosuchgroup", "d:nobody1:nobody2"):
        assert await _err(e1, ConvSet(rid=e1.rid(), cid=target, pinned=True)) == "forbidden"
    assert await _err(e1, Readers(rid=e1.rid(), cid=group, seq=1)) == "forbidden"
    assert await _err(a1, Readers(rid=a1.rid(), cid="g:nosuchgroup", seq=1)) == "forbidden"
    # Direct read state is not asked for: it comes as READ_STATE.
    assert await _err(a1, Readers(rid=a1.rid(), cid=cid, seq=1)) == "bad_request"
    # Malformed bodies, raw: no change, a wrong type, bad cid, bad limit.
    for body in (
        {"cid": cid},
        {"cid": cid, "clear": False},
        {"cid": cid, "pinned": "yes"},
        {"cid": cid, "muted": 1},
        {"cid": "x:y", "pinned": True},
        {"pinned": True},
    ):
        rid = a1.rid()
        await a1.send(msgpack.packb([30, rid, body]))
        reply = await a1.reply(rid)
        assert isinstance(reply, Err), (body, reply)
        assert reply.code == "bad_request"
    for body in (
        {"cid": group, "seq": -1},
        {"cid": group, "seq": 1, "limit": 501},
        {"cid": group, "seq": 1, "after": "no:id"},
        {"cid": group},
    ):
        rid = a1.rid()
        await a1.send(msgpack.packb([31, rid, body]))
        reply = await a1.reply(rid)
        assert isinstance(reply, Err), (body, reply)
        assert reply.code == "bad_request"
    # HTTP refusals.
    for path, payload in (
        (f"/api/v1/conversations/{cid}", {}),
        (f"/api/v1/conversations/{cid}", {"pinned": 1}),
        (f"/api/v1/conversations/{cid}", {"colour": True}),
        ("/api/v1/conversations/not-a-cid", {"pinned": True}),
    ):
        reply = await api.http.patch(path, json=payload, headers=api.auth(alice))
        assert reply.status_code == 422, (path, payload, reply.text)
    for target in (group, "g:nosuchgroup"):
        reply = await api.http.patch(
            f"/api/v1/conversations/{target}", json={"pinned": True}, headers=api.auth(eve)
        )
        assert reply.status_code == 403, reply.text
        reply = await api.http.get(
            f"/api/v1/conversations/{target}/readers", params={"seq": 1}, headers=api.auth(eve)
        )
        assert reply.status_code == 403, reply.text
    for params in ({}, {"seq": "x"}, {"seq": 1, "after": "a:b"}, {"seq": 1, "limit": 501}):
        reply = await api.http.get(
            f"/api/v1/conversations/{group}/readers", params=params, headers=api.auth(alice)
        )
        assert reply.status_code == 422, (params, reply.text)
    # An oversized CONV_SET closes that connection with 1009 and is not applied.
    big = await connect(alice.token, device="d3")
    await big.send(encode(ConvSet(rid=1, cid=cid, pinned=True))[:-1] + b"\xc3" + b" " * 70_000)
    assert await big.close_code() == 1009
    # Nothing changed: no version, no push, and both connections still serve.
    assert await _version(a1) == before
    assert await _pushes(a2) == []
    assert await _send(a1, cid, "2") == 2
    with trio.fail_after(5):
        view = await _conv(a2, cid)
    assert view is not None
    assert (view["pinned"], view["muted"], view["hidden"], view["cleared_seq"]) == (
        False,
        False,
        False,
        0,
    )


async def test_a_paged_sync_walks_every_conversation_once(api: Api, connect: Connect) -> None:
    alice = await api.account()
    friends = [await api.account() for _ in range(5)]
    cids = [await api.befriend(alice, friend) for friend in friends]
    conn = await connect(alice.token)
    await _send(conn, cids[0], "late")  # the oldest conversation changes last
    seen: list[str] = []
    since = None
    while True:
        body = await _ok(conn, Sync(rid=conn.rid(), since=since, limit=2))
        seen += [c["cid"] for c in body["convs"]]
        since = body["version"]
        if not body["more"]:
            break
    assert sorted(seen) == sorted(cids)
    assert len(seen) == len(set(seen))
    assert seen[-1] == cids[0]
    assert since == await _version(conn)
    listed = await api.http.get(
        "/api/v1/conversations", params={"limit": 4}, headers=api.auth(alice)
    )
    assert listed.status_code == 200, listed.text
    assert (len(listed.json()["conversations"]), listed.json()["more"]) == (4, True)
    rid = conn.rid()
    await conn.send(msgpack.packb([12, rid, {"limit": 0}]))
    refused = await conn.reply(rid)
    assert isinstance(refused, Err)
    assert refused.code == "bad_request"


async def test_group_changes_count_as_messages_and_removed_members_leave_readers(
    api: Api, connect: Connect
) -> None:
    owner, bob, carol = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, bob)
    await api.befriend(owner, carol)
    cid = await api.group(owner, [bob, carol])
    group_id = cid[2:]
    o1, b1 = await connect(owner.token), await connect(bob.token)
    await _ok(b1, ConvSet(rid=b1.rid(), cid=cid, hidden=True))
    before = await _conv(b1, cid)
    assert before is not None
    reply = await api.http.patch(
        f"/api/v1/groups/{group_id}", json={"name": "renamed"}, headers=api.auth(owner)
    )
    assert reply.status_code == 200, reply.text
    # The system message unhides the group and is unread to all but its actor.
    mine, bobs = await _conv(o1, cid), await _conv(b1, cid)
    assert mine is not None
    assert bobs is not None
    assert (mine["unread"], bobs["unread"], bobs["hidden"]) == (0, before["unread"] + 1, False)
    reply = await api.http.post(
        f"/api/v1/groups/{group_id}/members/remove",
        json={"users": [carol.id]},
        headers=api.auth(owner),
    )
    assert reply.status_code == 200, reply.text
    seq = await _send(o1, cid, "after")
    readers = await _ok(o1, Readers(rid=o1.rid(), cid=cid, seq=seq))
    assert sorted(readers["read"] + readers["unread"]) == sorted([owner.id, bob.id])
    c1 = await connect(carol.token)
    assert await _err(c1, Readers(rid=c1.rid(), cid=cid, seq=1)) == "forbidden"
    # Carol's list ends at her removal; she may still tidy it up.
    gone = await _conv(c1, cid)
    assert gone is not None
    assert gone["max_seq"] == seq - 1
    assert (await _ok(c1, ConvSet(rid=c1.rid(), cid=cid, clear=True)))["cleared_seq"] == seq - 1
