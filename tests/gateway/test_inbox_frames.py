"""The inbox over the socket: NOTIFY pushes, INBOX_PULL, INBOX_ACK, SYNC's
inbox_max, and what deleting or blocking a friend does to messaging."""

from __future__ import annotations

from typing import Any

from sandcat.protocol import (
    Err,
    ErrorCode,
    InboxAck,
    InboxPull,
    Notify,
    Ok,
    Ping,
    Pull,
    Send,
    Sync,
)
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


async def _ok(conn: Raw, frame: object) -> dict[str, Any]:
    return ok_body(await conn.request(frame))


async def _notify(conn: Raw) -> Notify:
    push = await conn.push()
    assert isinstance(push, Notify), push
    return push


async def _request(api: Api, sender: Account, to: Account) -> str:
    reply = await api.http.post(
        "/api/v1/friends/requests", json={"to": to.id, "message": "hi"}, headers=api.auth(sender)
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["request"]["id"])


async def test_every_device_gets_each_notice_once_until_it_acks(api: Api, connect: Connect) -> None:
    alice = await api.account()
    bob_phone = await api.account("phone")
    bob_laptop = await api.login(bob_phone.username, bob_phone.password, "laptop")
    phone = await connect(bob_phone.token, device="phone")
    laptop = await connect(bob_laptop.token, device="laptop")

    request_id = await _request(api, alice, bob_phone)
    pushed = [await _notify(phone), await _notify(laptop)]
    assert {(n.nseq, n.type) for n in pushed} == {(1, "friend.requested")}
    assert pushed[0].data["request"] == request_id
    assert pushed[0].data["from"] == alice.id

    pulled = await _ok(phone, InboxPull(rid=phone.rid()))
    assert pulled["max_nseq"] == 1
    assert pulled["more"] is False
    assert pulled["notices"] == [
        {"nseq": 1, "type": "friend.requested", "data": dict(pushed[0].data), "ts": pushed[0].ts}
    ]
    assert await _ok(phone, InboxAck(rid=phone.rid(), upto=1)) == {}
    # Acked on the phone: never again there; the laptop still has it.
    assert (await _ok(phone, InboxPull(rid=phone.rid())))["notices"] == []
    assert len((await _ok(laptop, InboxPull(rid=laptop.rid())))["notices"]) == 1
    await _ok(laptop, InboxAck(rid=laptop.rid(), upto=1))

    # Reconnecting changes nothing: acked notices are gone for good.
    again = await connect(bob_phone.token, device="phone")
    assert (await _ok(again, InboxPull(rid=again.rid())))["notices"] == []
    assert (await _ok(again, InboxPull(rid=again.rid(), after=0)))["notices"] == []
    sync = await _ok(again, Sync(rid=again.rid()))
    assert sync["inbox_max"] == 1


async def test_sync_reports_inbox_max_for_catching_up(api: Api, connect: Connect) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    bob_conn = await connect(bob.token)
    assert (await _ok(bob_conn, Sync(rid=bob_conn.rid())))["inbox_max"] == 0
    await _request(api, alice, bob)
    await _request(api, carol, bob)
    assert (await _ok(bob_conn, Sync(rid=bob_conn.rid())))["inbox_max"] == 2
    page = await _ok(bob_conn, InboxPull(rid=bob_conn.rid(), after=1, limit=1))
    assert ([n["nseq"] for n in page["notices"]], page["more"]) == ([2], False)


async def test_an_unfriended_conversation_stays_readable_not_writable(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    alice_conn = await connect(alice.token)
    sent = await alice_conn.request(
        Send(rid=alice_conn.rid(), cid=cid, cmid="m1", kind=1, body={"text": "hello"})
    )
    assert isinstance(sent, Ok)
    reply = await api.http.delete(f"/api/v1/friends/{alice.id}", headers=api.auth(bob))
    assert reply.status_code == 204
    for conn in (alice_conn, await connect(bob.token)):
        refused = await conn.request(
            Send(rid=conn.rid(), cid=cid, cmid="m2", kind=1, body={"text": "still there?"})
        )
        assert isinstance(refused, Err)
        assert refused.code is ErrorCode.FORBIDDEN
        page = await _ok(conn, Pull(rid=conn.rid(), cid=cid, after=0))
        assert [m["body"] for m in page["msgs"]] == [{"text": "hello"}]
    notice = await _notify(alice_conn)
    assert (notice.type, notice.data) == ("friend.deleted", {"by": bob.id, "cid": cid})


async def test_a_blocked_friend_gets_the_stranger_answer(api: Api, connect: Connect) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    await api.http.put(f"/api/v1/blocks/{bob.id}", headers=api.auth(alice))
    bob_conn = await connect(bob.token)
    blocked = await bob_conn.request(
        Send(rid=bob_conn.rid(), cid=cid, cmid="m1", kind=1, body={"text": "hi"})
    )
    low, high = sorted((bob.id, carol.id))
    stranger = await bob_conn.request(
        Send(rid=bob_conn.rid(), cid=f"d:{low}:{high}", cmid="m1", kind=1, body={"text": "hi"})
    )
    assert isinstance(blocked, Err)
    assert isinstance(stranger, Err)
    assert (blocked.code, blocked.message) == (stranger.code, stranger.message)
    # Nothing reached alice, not even a notice of the block.
    alice_conn = await connect(alice.token)
    await _ok(alice_conn, Ping(rid=alice_conn.rid()))
    assert alice_conn.pushes == []


async def test_a_password_change_closes_the_other_devices_with_4007(
    api: Api, connect: Connect
) -> None:
    here = await api.account("here")
    there = await api.login(here.username, here.password, "there")
    here_conn = await connect(here.token, device="here")
    there_conn = await connect(there.token, device="there")
    reply = await api.http.post(
        "/api/v1/users/me/password",
        json={"current_password": here.password, "new_password": "brand new horse 5"},
        headers=api.auth(here),
    )
    assert reply.status_code == 204
    assert await there_conn.close_code() == 4007
    assert isinstance(await here_conn.request(Ping(rid=here_conn.rid())), Ok)


async def test_disabling_the_account_closes_every_socket_with_4007(
    api: Api, connect: Connect
) -> None:
    ann = await api.account("one")
    other = await api.login(ann.username, ann.password, "two")
    conns = [await connect(ann.token, device="one"), await connect(other.token, device="two")]
    reply = await api.http.post(
        "/api/v1/users/me/disable", json={"password": ann.password}, headers=api.auth(ann)
    )
    assert reply.status_code == 204
    assert [await conn.close_code() for conn in conns] == [4007, 4007]
