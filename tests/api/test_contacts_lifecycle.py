"""Cancel, delete, remark, block and incremental contact sync over a real server."""

from __future__ import annotations

import sqlite3

from tests.api.api_harness import Api

REQUESTS = "/api/v1/friends/requests"
FRIENDS = "/api/v1/friends"
BLOCKS = "/api/v1/blocks"
User = tuple[str, dict[str, str]]


async def request(api: Api, sender: User, to: User, **extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    reply = await api.client.post(REQUESTS, json={"to": to[0], **extra}, headers=sender[1])
    return reply.status_code, reply.json()


async def can_send(api: Api, cid: str) -> dict[str, bool]:
    def select(conn: sqlite3.Connection) -> dict[str, bool]:
        rows = conn.execute(
            "SELECT user_id, can_send FROM conversation_members WHERE cid = ?", (cid,)
        )
        return {str(user): bool(flag) for user, flag in rows}

    return await api.db.read(select)


def cid_of(a: User, b: User) -> str:
    return f"d:{min(a[0], b[0])}:{max(a[0], b[0])}"


async def test_cancel_withdraws_only_my_own_pending_request(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    _, body = await request(api, alice, bob)
    path = f"{REQUESTS}/{body['request']['id']}/cancel"
    assert (await api.client.post(path, headers=bob[1])).status_code == 404
    reply = await api.client.post(path, headers=alice[1])
    assert reply.status_code == 200
    assert reply.json()["request"]["status"] == "cancelled"
    listed = (await api.client.get(REQUESTS, headers=bob[1])).json()
    assert listed == {"incoming": [], "outgoing": []}
    assert (await api.client.post(path, headers=alice[1])).status_code == 404
    # Cancelling is no rejection: alice may ask again at once.
    assert (await request(api, alice, bob))[0] == 201


async def test_requests_list_incoming_and_outgoing(api: Api) -> None:
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    await request(api, alice, bob)
    await request(api, carol, alice)
    listed = (await api.client.get(REQUESTS, headers=alice[1])).json()
    assert [(r["from"], r["to"]) for r in listed["outgoing"]] == [(alice[0], bob[0])]
    assert [(r["from"], r["to"]) for r in listed["incoming"]] == [(carol[0], alice[0])]


async def test_a_second_request_either_way_is_a_conflict(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await request(api, alice, bob)
    status, body = await request(api, alice, bob, message="again")
    assert (status, body["error"]["code"]) == (409, "conflict")
    status, body = await request(api, bob, alice)
    assert status == 409
    assert "accept" in body["error"]["message"]


async def test_delete_ends_the_friendship_on_both_sides_and_notifies(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.befriend(alice, bob)
    cid = cid_of(alice, bob)
    assert (await api.client.delete(f"{FRIENDS}/{bob[0]}", headers=alice[1])).status_code == 204
    for side in (alice, bob):
        assert (await api.client.get(FRIENDS, headers=side[1])).json() == {"friends": []}
    # Both keep the conversation (readable); neither can write in it.
    assert await can_send(api, cid) == {alice[0]: False, bob[0]: False}
    notice = api.notifier.notices[-1]
    assert (notice.user, notice.type, notice.data) == (
        bob[0],
        "friend.deleted",
        {"by": alice[0], "cid": cid},
    )
    assert (await api.client.delete(f"{FRIENDS}/{bob[0]}", headers=alice[1])).status_code == 404
    # Befriending again makes the conversation writable again.
    await api.befriend(alice, bob)
    assert await can_send(api, cid) == {alice[0]: True, bob[0]: True}


async def test_the_deleted_side_waits_out_the_cool_down_the_deleter_does_not(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.befriend(alice, bob)
    await api.client.delete(f"{FRIENDS}/{bob[0]}", headers=alice[1])
    status, body = await request(api, bob, alice)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert (await request(api, alice, bob))[0] == 201


async def test_remark_is_mine_alone(api: Api) -> None:
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    await api.befriend(alice, bob)
    reply = await api.client.patch(
        f"{FRIENDS}/{bob[0]}", json={"remark": " Bobby "}, headers=alice[1]
    )
    assert reply.status_code == 200
    assert reply.json()["friend"]["remark"] == "Bobby"
    bob_view = (await api.client.get(FRIENDS, headers=bob[1])).json()["friends"]
    assert bob_view[0]["remark"] == ""
    reply = await api.client.patch(f"{FRIENDS}/{carol[0]}", json={"remark": "x"}, headers=alice[1])
    assert reply.status_code == 404
    reply = await api.client.patch(
        f"{FRIENDS}/{bob[0]}", json={"remark": "x" * 65}, headers=alice[1]
    )
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "remark")
    reply = await api.client.patch(f"{FRIENDS}/{bob[0]}", json={}, headers=alice[1])
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "remark")


async def test_sync_returns_changes_after_a_version_deletions_included(api: Api) -> None:
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    await api.befriend(alice, bob)
    first = (await api.client.get(f"{FRIENDS}/sync", headers=alice[1])).json()
    assert [f["id"] for f in first["friends"]] == [bob[0]]
    assert [r["status"] for r in first["requests"]] == ["accepted"]
    since = first["version"]
    nothing = (await api.client.get(f"{FRIENDS}/sync?since={since}", headers=alice[1])).json()
    assert (nothing["friends"], nothing["requests"], nothing["version"]) == ([], [], since)

    await request(api, carol, alice)
    await api.client.delete(f"{FRIENDS}/{alice[0]}", headers=bob[1])
    changed = (await api.client.get(f"{FRIENDS}/sync?since={since}", headers=alice[1])).json()
    assert [(f["id"], f.get("deleted")) for f in changed["friends"]] == [(bob[0], True)]
    # The original's sync always reported requests as pending; ours carries the status.
    assert [(r["from"], r["status"]) for r in changed["requests"]] == [(carol[0], "pending")]
    assert changed["version"] > since
    future = (await api.client.get(f"{FRIENDS}/sync?since=999999999", headers=alice[1])).json()
    assert len(future["requests"]) == 2
    bad = await api.client.get(f"{FRIENDS}/sync?since=x", headers=alice[1])
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "since")


async def test_a_blocked_user_cannot_request_or_find_the_blocker(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await request(api, bob, alice)
    assert (await api.client.put(f"{BLOCKS}/{bob[0]}", headers=alice[1])).status_code == 204
    # Pending requests between them end silently.
    assert (await api.client.get(REQUESTS, headers=alice[1])).json()["incoming"] == []
    status, body = await request(api, bob, alice)
    stranger = await request(api, bob, ("nobody-at-all", {}))
    assert (status, body["error"]) == (stranger[0], stranger[1]["error"])
    assert status == 404
    profile = await api.client.get(f"/api/v1/users/{alice[0]}", headers=bob[1])
    assert profile.status_code == 404
    found = await api.client.get("/api/v1/users/search?q=alice", headers=bob[1])
    assert found.json()["users"] == []
    # The blocker asking the blocked is told to unblock first.
    assert (await request(api, alice, bob))[0] == 409
    listed = (await api.client.get(BLOCKS, headers=alice[1])).json()["blocks"]
    assert [b["id"] for b in listed] == [bob[0]]

    assert (await api.client.delete(f"{BLOCKS}/{bob[0]}", headers=alice[1])).status_code == 204
    assert (await api.client.get(BLOCKS, headers=alice[1])).json() == {"blocks": []}
    assert (await request(api, bob, alice))[0] == 201


async def test_blocking_a_friend_stops_writing_until_unblocked(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.befriend(alice, bob)
    cid = cid_of(alice, bob)
    await api.client.put(f"{BLOCKS}/{bob[0]}", headers=alice[1])
    await api.client.put(f"{BLOCKS}/{bob[0]}", headers=alice[1])  # idempotent
    assert await can_send(api, cid) == {alice[0]: False, bob[0]: False}
    await api.client.put(f"{BLOCKS}/{alice[0]}", headers=bob[1])
    await api.client.delete(f"{BLOCKS}/{bob[0]}", headers=alice[1])
    # Still blocked the other way.
    assert await can_send(api, cid) == {alice[0]: False, bob[0]: False}
    await api.client.delete(f"{BLOCKS}/{alice[0]}", headers=bob[1])
    assert await can_send(api, cid) == {alice[0]: True, bob[0]: True}


async def test_block_errors(api: Api) -> None:
    alice = await api.user("alice")
    reply = await api.client.put(f"{BLOCKS}/{alice[0]}", headers=alice[1])
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "id")
    assert (await api.client.put(f"{BLOCKS}/nobody", headers=alice[1])).status_code == 404
    assert (await api.client.put(f"{BLOCKS}/a:b", headers=alice[1])).status_code == 422
    assert (await api.client.delete(f"{BLOCKS}/nobody", headers=alice[1])).status_code == 204
