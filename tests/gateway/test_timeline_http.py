"""The history routes over HTTP answer like HISTORY and HIDE over the socket."""

from __future__ import annotations

from typing import Any

from sandcat.protocol import Kind, Pull, Recall, Send
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


async def _send(conn: Raw, cid: str, cmid: str, kind: int = 1, body: object = None) -> Any:
    frame = Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=kind, body=body or {"text": cmid})
    return ok_body(await conn.request(frame))


async def _scene(api: Api, connect: Connect) -> tuple[Account, Account, str, Raw]:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    return alice, bob, cid, await connect(alice.token)


async def test_pages_of_messages_both_ways(api: Api, connect: Connect) -> None:
    alice, bob, cid, conn = await _scene(api, connect)
    for i in range(1, 6):
        await _send(conn, cid, f"m{i}")
    await _send(conn, cid, "bin", kind=1000, body={"ct": b"\x00\xff", "n": [float("nan")]})

    latest = await api.http.get(
        f"/api/v1/conversations/{cid}/messages", params={"limit": 2}, headers=api.auth(bob)
    )
    older = await api.http.get(
        f"/api/v1/conversations/{cid}/messages",
        params={"before": 3, "limit": 5},
        headers=api.auth(bob),
    )
    newer = await api.http.get(
        f"/api/v1/conversations/{cid}/messages", params={"after": 4}, headers=api.auth(alice)
    )

    assert latest.status_code == older.status_code == newer.status_code == 200
    body = latest.json()
    assert ([m["seq"] for m in body["messages"]], body["more"]) == ([5, 6], True)
    assert (body["min_seq"], body["max_seq"]) == (1, 6)
    assert body["messages"][1]["body"] == {"ct": {"$bin": "00ff"}, "n": [{"$float": "nan"}]}
    assert "cmid" not in body["messages"][0]
    assert [m["seq"] for m in older.json()["messages"]] == [1, 2]
    assert newer.json()["messages"][0]["cmid"] == "m5"


async def test_message_by_mid_and_its_tombstone(api: Api, connect: Connect) -> None:
    _, bob, cid, conn = await _scene(api, connect)
    mid = (await _send(conn, cid, "hello"))["mid"]
    ok_body(await conn.request(Recall(rid=conn.rid(), cid=cid, cmid="r", seq=1)))
    stranger = await api.account()

    found = await api.http.get(f"/api/v1/messages/{mid}", headers=api.auth(bob))
    hidden = await api.http.get(f"/api/v1/messages/{mid}", headers=api.auth(stranger))
    missing = await api.http.get("/api/v1/messages/nope", headers=api.auth(bob))

    assert found.status_code == 200
    message = found.json()["message"]
    assert (message["mid"], message["recalled"], message["body"]) == (mid, True, None)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == "not_found"


async def test_hide_over_http_hides_for_me_only(api: Api, connect: Connect) -> None:
    alice, bob, cid, conn = await _scene(api, connect)
    for i in range(1, 4):
        await _send(conn, cid, f"m{i}")

    hidden = await api.http.post(
        f"/api/v1/conversations/{cid}/messages/hide", json={"seqs": [2]}, headers=api.auth(bob)
    )

    assert hidden.status_code == 204
    mine = await api.http.get(f"/api/v1/conversations/{cid}/messages", headers=api.auth(bob))
    assert [m["seq"] for m in mine.json()["messages"]] == [1, 3]
    pulled = ok_body(await conn.request(Pull(rid=conn.rid(), cid=cid, after=0)))
    assert [m["seq"] for m in pulled["msgs"]] == [1, 2, 3]
    assert alice.id != bob.id


async def test_history_routes_refuse_bad_and_foreign_requests(api: Api, connect: Connect) -> None:
    alice, _, cid, conn = await _scene(api, connect)
    await _send(conn, cid, "m1")
    stranger = await api.account()
    url = f"/api/v1/conversations/{cid}/messages"

    cases = [
        (api.http.get(url, headers=api.auth(stranger)), 403, "forbidden"),
        (api.http.get("/api/v1/conversations/g:none/messages", headers=api.auth(alice)), 403, None),
        (api.http.get("/api/v1/conversations/x/messages", headers=api.auth(alice)), 422, None),
        (api.http.get(url, params={"before": 2, "after": 0}, headers=api.auth(alice)), 422, None),
        (api.http.get(url, params={"limit": 201}, headers=api.auth(alice)), 422, None),
        (api.http.get(url, params={"after": -1}, headers=api.auth(alice)), 422, None),
        (api.http.get(url), 401, None),
        (api.http.post(f"{url}/hide", json={"seqs": [1]}, headers=api.auth(stranger)), 403, None),
        (api.http.post(f"{url}/hide", json={"seqs": [9]}, headers=api.auth(alice)), 422, None),
        (api.http.post(f"{url}/hide", json={"seqs": [0]}, headers=api.auth(alice)), 422, None),
        (api.http.post(f"{url}/hide", json={"seqs": "1"}, headers=api.auth(alice)), 422, None),
        (api.http.post(f"{url}/hide", json={}, headers=api.auth(alice)), 422, None),
    ]
    for request, status, code in cases:
        reply = await request
        assert reply.status_code == status, reply.text
        if code is not None:
            assert reply.json()["error"]["code"] == code
    page = await api.http.get(url, headers=api.auth(alice))
    assert [m["seq"] for m in page.json()["messages"]] == [1]
    assert Kind.TEXT == 1
