"""Presence over real sockets: friends only, snapshot on subscribe, invisible, last seen,
several devices, and batching (one PRESENCE per recipient per batch)."""

from __future__ import annotations

import time

import pytest
import trio

from sandcat.protocol import Presence, PresenceSet, encode
from tests.gateway.raw import Connect, Raw
from tests.scene import Account, Api
from tests.signals.watch import err_code, next_push, ok, pushes_within

BATCH_S = 0.3


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"signals.presence_batch_ms": int(BATCH_S * 1000), "signals.presence_refresh_s": 0.1}


async def watch(connect: Connect, account: Account, device: str = "d1") -> tuple[Raw, dict]:
    """Connect and subscribe; the PRESENCE_SET reply (with the snapshot)."""
    raw = await connect(account.token, device=device)
    return raw, ok(await raw.request(PresenceSet(rid=raw.rid())))


def states(frame: Presence) -> dict[str, str]:
    return {str(entry["user"]): str(entry["state"]) for entry in frame.users}


async def test_friends_see_each_other_come_and_go_strangers_see_nothing(
    api: Api, connect: Connect
) -> None:
    alice, bob, cy = [await api.account() for _ in range(3)]
    await api.befriend(alice, bob)
    bob_ws, snapshot = await watch(connect, bob)
    assert snapshot == {"state": "online", "users": []}
    cy_ws, _ = await watch(connect, cy)

    before = int(time.time() * 1000)
    laptop = await connect(alice.token, device="laptop")
    assert states(await next_push(bob_ws, Presence)) == {alice.id: "online"}

    await laptop.ws.aclose()
    gone = await next_push(bob_ws, Presence)
    (entry,) = gone.users
    assert entry["state"] == "offline"
    assert before <= int(entry["last_seen"]) <= int(time.time() * 1000)  # type: ignore[call-overload]
    assert await pushes_within(cy_ws, Presence, 0.1) == []


async def test_subscribing_returns_the_current_presence_of_friends(
    api: Api, connect: Connect
) -> None:
    alice, bob, cy, dan = [await api.account() for _ in range(4)]
    for other in (bob, cy, dan):
        await api.befriend(alice, other)
    await connect(bob.token)
    cy_ws = await connect(cy.token)
    ok(await cy_ws.request(PresenceSet(rid=cy_ws.rid(), state="busy")))
    gone = await connect(dan.token)
    await gone.ws.aclose()
    await trio.sleep(0.1)

    _, snapshot = await watch(connect, alice)

    users = {entry["user"]: entry for entry in snapshot["users"]}
    assert users[bob.id] == {"user": bob.id, "state": "online"}
    assert users[cy.id] == {"user": cy.id, "state": "busy"}
    assert users[dan.id]["state"] == "offline"
    assert users[dan.id]["last_seen"] > 0


async def test_invisible_appears_offline_and_stays_so_across_reconnects(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    bob_ws, _ = await watch(connect, bob)
    alice_ws, _ = await watch(connect, alice)
    assert states(await next_push(bob_ws, Presence)) == {alice.id: "online"}

    assert ok(await alice_ws.request(PresenceSet(rid=alice_ws.rid(), state="invisible"))) == {
        "state": "invisible",
        "users": [{"user": bob.id, "state": "online"}],
    }
    assert states(await next_push(bob_ws, Presence)) == {alice.id: "offline"}
    await alice_ws.ws.aclose()
    again, mine = await watch(connect, alice, device="phone")
    assert mine["state"] == "invisible"
    _, snapshot = await watch(connect, bob, device="tablet")
    assert [entry["state"] for entry in snapshot["users"]] == ["offline"]
    assert await pushes_within(bob_ws, Presence, BATCH_S + 0.2) == []
    ok(await again.request(PresenceSet(rid=again.rid(), state="away")))
    assert states(await next_push(bob_ws, Presence)) == {alice.id: "away"}


async def test_online_while_any_device_is(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    bob_ws, _ = await watch(connect, bob)
    laptop = await connect(alice.token, device="laptop")
    phone = await connect(alice.token, device="phone")
    assert states(await next_push(bob_ws, Presence)) == {alice.id: "online"}

    await laptop.ws.aclose()
    assert await pushes_within(bob_ws, Presence, BATCH_S + 0.2) == []
    await phone.ws.aclose()
    assert states(await next_push(bob_ws, Presence)) == {alice.id: "offline"}


async def test_changes_are_batched_into_one_push_per_recipient(api: Api, connect: Connect) -> None:
    hub = await api.account()
    friends = [await api.account() for _ in range(6)]
    for friend in friends:
        await api.befriend(hub, friend)
    hub_ws, _ = await watch(connect, hub)

    async with trio.open_nursery() as nursery:
        for friend in friends:
            nursery.start_soon(connect, friend.token)
    pushes = await pushes_within(hub_ws, Presence, BATCH_S * 3)

    seen = {user: state for frame in pushes for user, state in states(frame).items()}
    assert seen == {friend.id: "online" for friend in friends}
    # Six changes within about one batch window: at most two pushes, not six.
    assert 1 <= len(pushes) <= 2


async def test_a_bad_state_is_refused_and_changes_nothing(api: Api, connect: Connect) -> None:
    alice = await api.account()
    raw = await connect(alice.token)
    await raw.send(encode(PresenceSet(rid=9, state="away")).replace(b"away", b"gone"))
    assert err_code(await raw.reply(9)) == "bad_request"
    assert ok(await raw.request(PresenceSet(rid=raw.rid())))["state"] == "online"
