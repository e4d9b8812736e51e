"""Typing indicators over real sockets: members only, rate limited, never stored."""

from __future__ import annotations

import pytest
import trio

from sandcat.protocol import Err, Pull, Typing, TypingEvent, encode
from tests.gateway.raw import Connect
from tests.scene import Api
from tests.signals.watch import err_code, next_push, ok, pushes_within


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"signals.typing_interval_s": 0.4}


async def test_typing_reaches_the_other_members_only(api: Api, connect: Connect) -> None:
    alice, bob, cy, dan = [await api.account() for _ in range(4)]
    await api.befriend(alice, bob)
    await api.befriend(alice, cy)
    await api.befriend(alice, dan)
    group = await api.group(alice, [bob, cy])
    laptop = await connect(alice.token, device="laptop")
    phone = await connect(alice.token, device="phone")
    bob_ws, cy_ws, dan_ws = [await connect(a.token) for a in (bob, cy, dan)]

    ok(await laptop.request(Typing(rid=laptop.rid(), cid=group)))

    for raw in (bob_ws, cy_ws):
        event = await next_push(raw, TypingEvent)
        assert (event.cid, event.user, event.active) == (group, alice.id, True)
    assert await pushes_within(phone, TypingEvent, 0.3) == []
    assert await pushes_within(dan_ws, TypingEvent, 0.01) == []
    # Never stored: the group has no message.
    pulled = ok(await bob_ws.request(Pull(rid=bob_ws.rid(), cid=group, after=0)))
    assert (pulled["msgs"], pulled["max_seq"]) == ([], 0)


async def test_one_typing_per_conversation_per_interval(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    typist, watcher = await connect(alice.token), await connect(bob.token)

    ok(await typist.request(Typing(rid=typist.rid(), cid=direct)))
    again = await typist.request(Typing(rid=typist.rid(), cid=direct))
    assert isinstance(again, Err)
    assert again.code == "rate_limited"
    assert again.retry_after_ms is not None
    assert 0 < again.retry_after_ms <= 400
    # A stop right after a start is let through (once), so the indicator can be cleared.
    ok(await typist.request(Typing(rid=typist.rid(), cid=direct, active=False)))
    assert err_code(await typist.request(Typing(rid=typist.rid(), cid=direct, active=False))) == (
        "rate_limited"
    )
    events = await pushes_within(watcher, TypingEvent, 0.2)
    assert [event.active for event in events] == [True, False]
    await trio.sleep(0.45)
    ok(await typist.request(Typing(rid=typist.rid(), cid=direct)))
    assert [e.active for e in await pushes_within(watcher, TypingEvent, 0.3)] == [True]


async def test_typing_where_one_may_not_write_is_forbidden(api: Api, connect: Connect) -> None:
    alice, bob, eve = [await api.account() for _ in range(3)]
    direct = await api.befriend(alice, bob)
    group = await api.group(alice, [bob])
    eve_ws, bob_ws = await connect(eve.token), await connect(bob.token)

    for cid in (direct, group, "g:no-such-group", f"d:{eve.id}:zzzzzz"):
        reply = await eve_ws.request(Typing(rid=eve_ws.rid(), cid=cid))
        assert err_code(reply) == "forbidden", cid
    # Unfriended: the direct conversation no longer takes typing from either side.
    gone = await api.http.delete(f"/api/v1/friends/{bob.id}", headers=api.auth(alice))
    assert gone.status_code in (200, 204), gone.text
    assert err_code(await bob_ws.request(Typing(rid=bob_ws.rid(), cid=direct))) == "forbidden"
    assert await pushes_within(bob_ws, TypingEvent, 0.1) == []


async def test_malformed_typing_is_a_bad_request_and_the_connection_stays(
    api: Api, connect: Connect
) -> None:
    alice = await api.account()
    raw = await connect(alice.token)
    await raw.send(bytes.fromhex("93283f81a3636964a3783a79"))  # [40, 63, {"cid": "x:y"}]
    assert err_code(await raw.reply(63)) == "bad_request"
    await raw.send(encode(Typing(rid=64, cid="d:a:b")).replace(b"\xc3", b"\x01"))
    assert err_code(await raw.reply(64)) == "bad_request"
    assert err_code(await raw.request(Typing(rid=raw.rid(), cid="d:a:b"))) == "forbidden"
