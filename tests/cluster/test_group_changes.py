"""Group changes in cluster mode: the system message a change commits on instance A
reaches members connected to instance B through the outbox and Kafka, and a
member removed on A stops receiving on B."""

from __future__ import annotations

import httpx
import trio
from trio_websocket import connect_websocket_url

from sandcat.protocol import Msg, Ok, Send
from tests.client.cast import Cast
from tests.cluster.conftest import Instance
from tests.gateway.raw import Raw


async def _system(conn: Raw, event: str) -> Msg:
    while True:
        push = await conn.push()
        if isinstance(push, Msg) and push.kind == 9:
            assert isinstance(push.body, dict)
            assert push.body["event"] == event, push.body
            return push


async def test_a_change_on_one_instance_reaches_members_on_the_other(
    cluster: tuple[Instance, Instance], cast: Cast, nursery: trio.Nursery
) -> None:
    a, b = cluster
    with trio.fail_after(60):
        owner, member, guest = [await cast.person(n) for n in ("owner", "member", "guest")]
        await cast.befriend(owner, member)
        await cast.befriend(owner, guest)
        cid = await cast.group(owner, [member])
        gid = cid[2:]
        conns: list[Raw] = []
        for person in (member, guest):
            raw = Raw(await connect_websocket_url(nursery, b.ws_url, subprotocols=["sandcat.v1"]))
            await raw.hello(person.token, "on-b")
            conns.append(raw)
        on_b, guest_on_b = conns
        async with httpx.AsyncClient(base_url=a.http_url, timeout=10) as http:
            auth = {"Authorization": f"Bearer {owner.token}"}
            reply = await http.post(
                f"/api/v1/groups/{gid}/members", json={"users": [guest.id]}, headers=auth
            )
            assert reply.status_code == 200, reply.text
            joined = reply.json()["seq"]
            assert (await _system(on_b, "members.joined")).seq == joined
            assert (await _system(guest_on_b, "members.joined")).seq == joined
            reply = await http.post(
                f"/api/v1/groups/{gid}/members/remove", json={"users": [guest.id]}, headers=auth
            )
            assert reply.status_code == 200, reply.text
            removal = reply.json()["seq"]
        assert (await _system(on_b, "members.removed")).seq == removal
        assert (await _system(guest_on_b, "members.removed")).seq == removal
        sent = await on_b.request(
            Send(rid=on_b.rid(), cid=cid, cmid="after", kind=1, body={"text": "after"})
        )
        assert isinstance(sent, Ok)
        # The member's own instance delivered it; the removed guest gets nothing.
        for _ in range(3):
            await trio.sleep(0.2)
            pong = await guest_on_b.request(
                Send(rid=guest_on_b.rid(), cid=cid, cmid="x", kind=1, body={"text": "x"})
            )
            assert not isinstance(pong, Ok)
        assert not [p for p in guest_on_b.pushes if isinstance(p, Msg) and p.seq > removal]
        for raw in conns:
            await raw.ws.aclose()
