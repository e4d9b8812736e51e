"""Friend requests, friendships and groups over a real server."""

from __future__ import annotations

import sqlite3

from tests.api.api_harness import Api

REQUESTS = "/api/v1/friends/requests"


async def conversation_members(api: Api, cid: str) -> set[str]:
    def select(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute(
            "SELECT m.user_id FROM conversation_members m JOIN conversations c "
            "ON c.cid = m.cid WHERE m.cid = ? AND m.can_send = 1",
            (cid,),
        )
        return {str(row[0]) for row in rows}

    return await api.db.read(select)


async def test_request_then_accept_makes_friends_with_a_direct_conversation(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    reply = await api.client.post(
        REQUESTS, json={"to": bob[0], "message": "hi!", "remark": "Bobby"}, headers=alice[1]
    )
    assert reply.status_code == 201
    request = reply.json()["request"]
    assert request["from"] == alice[0]
    assert request["to"] == bob[0]
    assert request["status"] == "pending"
    assert request["message"] == "hi!"

    listed = (await api.client.get(REQUESTS, headers=bob[1])).json()
    assert [r["id"] for r in listed["incoming"]] == [request["id"]]
    assert listed["outgoing"] == []

    reply = await api.client.post(
        f"{REQUESTS}/{request['id']}/accept", json={"remark": "Al"}, headers=bob[1]
    )
    assert reply.status_code == 200
    friend = reply.json()["friend"]
    cid = f"d:{min(alice[0], bob[0])}:{max(alice[0], bob[0])}"
    assert friend["id"] == alice[0]
    assert friend["username"] == "alice"
    assert friend["remark"] == "Al"
    assert friend["cid"] == cid
    assert await conversation_members(api, cid) == {alice[0], bob[0]}

    alice_friends = (await api.client.get("/api/v1/friends", headers=alice[1])).json()["friends"]
    assert [(f["id"], f["remark"], f["cid"]) for f in alice_friends] == [(bob[0], "Bobby", cid)]
    bob_friends = (await api.client.get("/api/v1/friends", headers=bob[1])).json()["friends"]
    assert [f["id"] for f in bob_friends] == [alice[0]]


async def test_only_the_addressee_can_accept(api: Api) -> None:
    alice, bob, eve = await api.user("alice"), await api.user("bob"), await api.user("eve")
    request = (await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])).json()
    path = f"{REQUESTS}/{request['request']['id']}/accept"
    for intruder in (alice, eve):
        reply = await api.client.post(path, headers=intruder[1])
        assert reply.status_code == 404
    assert (await api.client.post(path, headers=bob[1])).status_code == 200
    # A request can be answered once.
    assert (await api.client.post(path, headers=bob[1])).status_code == 404


async def test_request_errors(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")

    async def send(to: object, **extra: object) -> tuple[int, dict[str, str]]:
        reply = await api.client.post(REQUESTS, json={"to": to, **extra}, headers=alice[1])
        return reply.status_code, reply.json().get("error", {})

    status, error = await send(alice[0])
    assert (status, error["field"]) == (422, "to")
    status, error = await send("nobody")
    assert (status, error["code"]) == (404, "not_found")
    status, error = await send(bob[0], message="m" * 257)
    assert (status, error["field"]) == (422, "message")
    status, error = await send(bob[0], remark="r" * 65)
    assert (status, error["field"]) == (422, "remark")
    status, error = await send("bad:id")
    assert (status, error["field"]) == (422, "to")
    assert (await send(bob[0]))[0] == 201
    status, error = await send(bob[0])
    assert (status, error["code"]) == (409, "conflict")
    incoming = (await api.client.get(REQUESTS, headers=bob[1])).json()["incoming"]
    await api.client.post(f"{REQUESTS}/{incoming[0]['id']}/accept", headers=bob[1])
    status, error = await send(bob[0])
    assert (status, error["message"]) == (409, "already friends")


async def test_accepting_settles_the_request_the_other_way_too(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    mine = (await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])).json()
    await api.client.post(REQUESTS, json={"to": alice[0]}, headers=bob[1])
    await api.client.post(f"{REQUESTS}/{mine['request']['id']}/accept", headers=bob[1])
    for user in (alice, bob):
        listed = (await api.client.get(REQUESTS, headers=user[1])).json()
        assert listed == {"incoming": [], "outgoing": []}


async def test_reject(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    request = (await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])).json()
    path = f"{REQUESTS}/{request['request']['id']}/reject"
    assert (await api.client.post(path, headers=alice[1])).status_code == 404
    reply = await api.client.post(path, headers=bob[1])
    assert reply.status_code == 200
    assert reply.json()["request"]["status"] == "rejected"
    assert (await api.client.get("/api/v1/friends", headers=bob[1])).json() == {"friends": []}
    # Rejected, alice may ask again, but only after the cool-down.
    again = await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])
    assert again.status_code == 429
    assert again.json()["error"]["retry_after_ms"] == 86_400_000
    api.clock.advance(86_400)
    fresh = {"Authorization": f"Bearer {(await api.login('alice'))['access_token']}"}
    again = await api.client.post(REQUESTS, json={"to": bob[0]}, headers=fresh)
    assert again.status_code == 201


async def test_create_group_with_friends_opens_its_conversation(api: Api) -> None:
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    await api.befriend(alice, bob)
    await api.befriend(carol, alice)
    reply = await api.client.post(
        "/api/v1/groups",
        json={"name": " Team ", "members": [bob[0], carol[0], bob[0], alice[0]]},
        headers=alice[1],
    )
    assert reply.status_code == 201
    group = reply.json()["group"]
    assert group["name"] == "Team"
    assert group["owner"] == alice[0]
    assert group["cid"] == f"g:{group['id']}"
    roles = {m["user"]: m["role"] for m in group["members"]}
    assert roles == {alice[0]: "owner", bob[0]: "member", carol[0]: "member"}
    assert await conversation_members(api, group["cid"]) == {alice[0], bob[0], carol[0]}

    seen = await api.client.get(f"/api/v1/groups/{group['id']}", headers=bob[1])
    assert seen.status_code == 200
    members = seen.json()["group"]["members"]
    assert members[0]["user"] == alice[0]
    assert sorted(members, key=str) == sorted(group["members"], key=str)
    mine = (await api.client.get("/api/v1/groups", headers=carol[1])).json()["groups"]
    assert [g["id"] for g in mine] == [group["id"]]


async def test_group_members_must_be_friends_of_the_creator(api: Api) -> None:
    alice, bob, eve = await api.user("alice"), await api.user("bob"), await api.user("eve")
    await api.befriend(alice, bob)
    reply = await api.client.post(
        "/api/v1/groups", json={"name": "Team", "members": [bob[0], eve[0]]}, headers=alice[1]
    )
    assert reply.status_code == 422
    assert reply.json()["error"]["field"] == "members"
    assert (await api.client.get("/api/v1/groups", headers=bob[1])).json() == {"groups": []}


async def test_group_size_is_capped_including_the_creator(api: Api) -> None:
    owner = await api.user("owner")
    friends = [await api.user(f"friend{i}") for i in range(4)]
    for friend in friends:
        await api.befriend(owner, friend)
    ids = [f[0] for f in friends]
    too_many = await api.client.post(
        "/api/v1/groups", json={"name": "big", "members": ids}, headers=owner[1]
    )
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "members"
    fits = await api.client.post(
        "/api/v1/groups", json={"name": "big", "members": ids[:3]}, headers=owner[1]
    )
    assert fits.status_code == 201


async def test_group_input_errors(api: Api) -> None:
    alice = await api.user("alice")
    cases = [
        ({"members": []}, "name"),
        ({"name": "", "members": []}, "name"),
        ({"name": "n" * 65, "members": []}, "name"),
        ({"name": "ok"}, "members"),
        ({"name": "ok", "members": "bob"}, "members"),
        ({"name": "ok", "members": [1]}, "members"),
        ({"name": "ok", "members": ["bad:id"]}, "members"),
    ]
    for body, field in cases:
        reply = await api.client.post("/api/v1/groups", json=body, headers=alice[1])
        assert reply.status_code == 422, body
        assert reply.json()["error"]["field"] == field, body


async def test_non_members_cannot_see_a_group(api: Api) -> None:
    alice, eve = await api.user("alice"), await api.user("eve")
    reply = await api.client.post(
        "/api/v1/groups", json={"name": "solo", "members": []}, headers=alice[1]
    )
    group_id = reply.json()["group"]["id"]
    hidden = await api.client.get(f"/api/v1/groups/{group_id}", headers=eve[1])
    missing = await api.client.get("/api/v1/groups/nothing", headers=eve[1])
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
