"""The inbox over HTTP: notices written with the change, pulled and acked per device."""

from __future__ import annotations

import pytest
import trio

from sandcat.domain.inbox import run_inbox_janitor
from sandcat.errors import StoreUnavailable
from tests.api.api_harness import Api

INBOX = "/api/v1/inbox"
REQUESTS = "/api/v1/friends/requests"


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_friend_request_lands_in_the_inbox_and_is_pushed(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    reply = await api.client.post(REQUESTS, json={"to": bob[0], "message": "hi"}, headers=alice[1])
    request_id = reply.json()["request"]["id"]
    (pushed,) = api.notifier.notices
    assert (pushed.user, pushed.nseq, pushed.type) == (bob[0], 1, "friend.requested")
    assert pushed.data == {
        "request": request_id,
        "from": alice[0],
        "username": "alice",
        "display_name": "alice",
        "message": "hi",
    }
    page = (await api.client.get(INBOX, headers=bob[1])).json()
    assert page["max_nseq"] == 1
    assert page["more"] is False
    assert page["notices"] == [
        {"nseq": 1, "type": "friend.requested", "data": pushed.data, "ts": api.clock.now_ms}
    ]
    assert (await api.client.get(INBOX, headers=alice[1])).json()["notices"] == []


async def test_every_contact_event_notifies_the_other_side(api: Api) -> None:
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    first = (await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])).json()
    await api.client.post(f"{REQUESTS}/{first['request']['id']}/accept", headers=bob[1])
    second = (await api.client.post(REQUESTS, json={"to": carol[0]}, headers=alice[1])).json()
    await api.client.post(f"{REQUESTS}/{second['request']['id']}/reject", headers=carol[1])
    third = (await api.client.post(REQUESTS, json={"to": bob[0]}, headers=carol[1])).json()
    await api.client.post(f"{REQUESTS}/{third['request']['id']}/cancel", headers=carol[1])
    await api.client.delete(f"/api/v1/friends/{alice[0]}", headers=bob[1])
    events = [(n.user, n.type) for n in api.notifier.notices]
    assert events == [
        (bob[0], "friend.requested"),
        (alice[0], "friend.accepted"),
        (carol[0], "friend.requested"),
        (alice[0], "friend.rejected"),
        (bob[0], "friend.requested"),
        (bob[0], "friend.cancelled"),
        (alice[0], "friend.deleted"),
    ]
    accepted = api.notifier.notices[1].data
    # The original left the sender of its "accepted" notice empty; ours names the friend.
    assert accepted["friend"] == bob[0]
    assert accepted["cid"] == f"d:{min(alice[0], bob[0])}:{max(alice[0], bob[0])}"
    alice_inbox = (await api.client.get(INBOX, headers=alice[1])).json()
    assert [n["type"] for n in alice_inbox["notices"]] == [
        "friend.accepted",
        "friend.rejected",
        "friend.deleted",
    ]
    assert [n["nseq"] for n in alice_inbox["notices"]] == [1, 2, 3]


async def test_acks_are_per_device_and_delete_once_all_devices_acked(api: Api) -> None:
    alice = await api.user("alice")
    await api.register("bob")
    phone = bearer(await api.login("bob", device="phone"))
    laptop = bearer(await api.login("bob", device="laptop"))
    bob_id = (await api.client.get("/api/v1/users/me", headers=phone)).json()["user"]["id"]
    for _ in range(3):
        request = (await api.client.post(REQUESTS, json={"to": bob_id}, headers=alice[1])).json()
        await api.client.post(f"{REQUESTS}/{request['request']['id']}/cancel", headers=alice[1])

    reply = await api.client.post(f"{INBOX}/ack", json={"upto": 4}, headers=phone)
    assert reply.json() == {"acked": 4}
    # The phone resumes after its ack; the laptop has seen nothing yet.
    phone_page = (await api.client.get(INBOX, headers=phone)).json()
    assert [n["nseq"] for n in phone_page["notices"]] == [5, 6]
    laptop_page = (await api.client.get(INBOX, headers=laptop)).json()
    assert [n["nseq"] for n in laptop_page["notices"]] == [1, 2, 3, 4, 5, 6]

    await api.client.post(f"{INBOX}/ack", json={"upto": 6}, headers=laptop)
    remaining = (await api.client.get(f"{INBOX}?after=0", headers=laptop)).json()
    assert [n["nseq"] for n in remaining["notices"]] == [5, 6]
    await api.client.post(f"{INBOX}/ack", json={"upto": 6}, headers=phone)
    gone = (await api.client.get(f"{INBOX}?after=0", headers=laptop)).json()
    assert gone == {"notices": [], "more": False, "max_nseq": 6}


async def test_paging_with_after_and_limit(api: Api) -> None:
    alice = await api.user("alice")
    bob = await api.user("bob")
    for _ in range(3):
        request = (await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])).json()
        await api.client.post(f"{REQUESTS}/{request['request']['id']}/cancel", headers=alice[1])
    page = (await api.client.get(f"{INBOX}?after=2&limit=3", headers=bob[1])).json()
    assert [n["nseq"] for n in page["notices"]] == [3, 4, 5]
    assert page["more"] is True


async def test_bad_inbox_input_is_422_naming_the_field(api: Api) -> None:
    bob = await api.user("bob")
    for query, field in (("after=-1", "after"), ("limit=0", "limit"), ("limit=201", "limit")):
        reply = await api.client.get(f"{INBOX}?{query}", headers=bob[1])
        assert (reply.status_code, reply.json()["error"]["field"]) == (422, field)
    for body, field in (({}, "upto"), ({"upto": -1}, "upto"), ({"upto": "3"}, "upto")):
        reply = await api.client.post(f"{INBOX}/ack", json=body, headers=bob[1])
        assert (reply.status_code, reply.json()["error"]["field"]) == (422, field)
    reply = await api.client.post(f"{INBOX}/ack", json={"upto": True}, headers=bob[1])
    assert reply.status_code == 422


async def test_retention_expires_old_notices_with_a_controlled_clock(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.client.post(REQUESTS, json={"to": bob[0]}, headers=alice[1])
    inbox = api.services.inbox
    api.clock.advance(29 * 86400)
    assert await inbox.expire() == 0
    api.clock.advance(86400 + 1)
    assert await inbox.expire() == 1
    assert (await inbox.pull(bob[0], "any", after=0)).notices == ()
    assert await inbox.head(bob[0]) == 1


class CountingInbox:
    def __init__(self) -> None:
        self.sweeps: list[float] = []

    async def expire(self) -> int:
        self.sweeps.append(trio.current_time())
        return len(self.sweeps) % 2


async def test_the_janitor_sweeps_every_interval(autojump_clock: trio.abc.Clock) -> None:
    inbox = CountingInbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_inbox_janitor(inbox, interval_s=3600))  # type: ignore[arg-type]
        await trio.sleep(3 * 3600 - 1)
        nursery.cancel_scope.cancel()
    assert [round(t - inbox.sweeps[0]) for t in inbox.sweeps] == [0, 3600, 7200]


class FailingOnceInbox(CountingInbox):
    async def expire(self) -> int:
        if not self.sweeps:
            self.sweeps.append(trio.current_time())
            raise StoreUnavailable("database unreachable")
        return await super().expire()


async def test_a_storage_outage_postpones_the_sweep_and_ends_nothing(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = FailingOnceInbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_inbox_janitor(inbox, interval_s=3600))  # type: ignore[arg-type]
        await trio.sleep(2 * 3600 - 1)
        nursery.cancel_scope.cancel()
    assert [round(t - inbox.sweeps[0]) for t in inbox.sweeps] == [0, 3600]
    assert "inbox retention failed, retrying later: database unreachable" in caplog.text


async def test_system_notices_are_pushed_and_pulled(api: Api) -> None:
    bob = await api.user("bob")
    notice = await api.services.inbox.post_system(bob[0], "maintenance at noon")
    assert api.notifier.notices == [notice]
    page = (await api.client.get(INBOX, headers=bob[1])).json()
    assert page["notices"][0]["type"] == "system"
    assert page["notices"][0]["data"] == {"text": "maintenance at noon", "level": "info"}
