"""1:1 call signalling over real sockets, with several devices per user.

Every flow ends with the call log it must leave in the direct conversation
(read back with PULL), and every refused request leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
import trio

from sandcat.errors import StoreUnavailable
from sandcat.protocol import Call, CallEvent, Msg, Pull, encode
from sandcat.store.sql.messages import SqlMessageStore
from tests.gateway.raw import Connect, Raw
from tests.scene import Account, Api
from tests.signals.watch import call_event, err_code, next_push, ok, pushes_within

RING_S = 0.6
GRACE_S = 0.2
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host", "sdp_mid": "0"}


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {
        "calls.ring_timeout_s": RING_S,
        "calls.disconnect_grace_s": GRACE_S,
        # Keep-alives of the books run often, so these tests exercise them too.
        "signals.presence_refresh_s": 0.1,
    }


async def invite(raw: Raw, peer: Account, media: str = "video") -> dict[str, Any]:
    return ok(await raw.request(Call(rid=raw.rid(), action="invite", peer=peer.id, media=media)))


async def act(raw: Raw, action: str, call: str, **fields: Any) -> object:
    return await raw.request(Call(rid=raw.rid(), action=action, call=call, **fields))


async def call_logs(raw: Raw, cid: str) -> list[dict[str, Any]]:
    """The call-log messages of ``cid``, as PULL returns them, once they are there."""
    with trio.fail_after(5):
        while True:
            msgs = ok(await raw.request(Pull(rid=raw.rid(), cid=cid, after=0)))["msgs"]
            logs = [m for m in msgs if m["kind"] == 8]
            if logs:
                return logs
            await trio.sleep(0.02)


async def logs_now(raw: Raw, cid: str) -> list[dict[str, Any]]:
    """The call-log messages of ``cid`` that PULL returns right away (after "ended",
    which is pushed once the log is stored)."""
    msgs = ok(await raw.request(Pull(rid=raw.rid(), cid=cid, after=0)))["msgs"]
    return [m for m in msgs if m["kind"] == 8]


async def ended(raw: Raw) -> CallEvent:
    return await call_event(raw, "ended")


async def test_accepted_call_relays_sdp_and_ice_and_logs_its_duration(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    tablet = await connect(alice.token, device="tablet")
    desk = await connect(bob.token, device="desk")
    phone = await connect(bob.token, device="phone")

    placed = await invite(laptop, bob)
    assert placed["state"] == "ringing"
    call = placed["call"]
    for device in (desk, phone):
        ring = await next_push(device, CallEvent)
        assert (ring.action, ring.call, ring.sender, ring.media) == (
            "ring",
            call,
            alice.id,
            "video",
        )

    ok(await act(desk, "accept", call))
    for device in (laptop, phone, tablet):
        accepted = await next_push(device, CallEvent)
        assert (accepted.action, accepted.device) == ("accepted", "desk")

    ok(await act(laptop, "offer", call, sdp="v=0 offer"))
    offer = await next_push(desk, CallEvent)
    assert (offer.action, offer.sdp) == ("offer", "v=0 offer")
    ok(await act(desk, "answer", call, sdp="v=0 answer"))
    assert (await next_push(laptop, CallEvent)).sdp == "v=0 answer"
    ok(await act(desk, "candidate", call, candidate=CANDIDATE))
    relayed = await next_push(laptop, CallEvent)
    assert (relayed.action, relayed.candidate) == ("candidate", CANDIDATE)
    # Signalling goes to the bound devices only.
    assert await pushes_within(phone, CallEvent, 0.1) == []
    assert await pushes_within(tablet, CallEvent, 0.01) == []

    await trio.sleep(0.2)
    ok(await act(laptop, "hangup", call))
    # The log is a message like any other: pushed to every device too (before
    # "ended"), and to the caller's own devices as written by the server (device _system).
    pushed = await next_push(phone, Msg)
    own = await next_push(laptop, Msg)
    for device in (laptop, desk, phone, tablet):
        end = await ended(device)
        assert (end.outcome, end.reason) == ("completed", "hangup")
        assert end.duration_ms is not None
        assert end.duration_ms >= 200
    (log,) = await logs_now(desk, direct)
    assert log["from"] == alice.id
    assert log["body"]["call"] == call
    assert log["body"]["outcome"] == "completed"
    assert log["body"]["duration_ms"] >= 200
    assert log["body"]["media"] == "video"
    assert (pushed.kind, pushed.seq) == (8, log["seq"])
    assert (own.seq, own.device, own.cmid) == (log["seq"], "_system", f"call-{call}")


@pytest.mark.parametrize(
    ("who", "action", "outcome"),
    [("callee", "reject", "declined"), ("caller", "cancel", "cancelled"), (None, None, "missed")],
)
async def test_unanswered_calls_end_and_are_logged(
    api: Api, connect: Connect, who: str | None, action: str | None, outcome: str
) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    phone = await connect(bob.token, device="phone")
    call = (await invite(laptop, bob, media="audio"))["call"]
    await next_push(phone, CallEvent)

    if action is not None:
        ok(await act(laptop if who == "caller" else phone, action, call))
    end = await ended(laptop)
    assert (end.outcome, end.duration_ms) == (outcome, 0)
    assert (await ended(phone)).outcome == outcome
    (log,) = await logs_now(laptop, direct)
    assert log["body"] == {"call": call, "media": "audio", "outcome": outcome, "duration_ms": 0}
    # The call is over: a late accept finds nothing.
    assert err_code(await act(phone, "accept", call)) == "not_found"


async def test_a_call_log_that_cannot_be_stored_still_ends_the_call(
    api: Api, connect: Connect, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    phone = await connect(bob.token, device="phone")
    call = (await invite(laptop, bob))["call"]
    await call_event(phone, "ring")

    async def down(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("database down")

    monkeypatch.setattr(SqlMessageStore, "append", down)
    ok(await act(laptop, "cancel", call))
    assert (await ended(phone)).outcome == "cancelled"
    assert "call log refused" in caplog.text


async def test_the_server_answers_busy_itself(api: Api, connect: Connect) -> None:
    alice, bob, cy = [await api.account() for _ in range(3)]
    await api.befriend(alice, bob)
    await api.befriend(alice, cy)
    cy_direct = await api.befriend(cy, bob)
    alice_ws = await connect(alice.token)
    bob_ws = await connect(bob.token)
    cy_ws = await connect(cy.token)
    first = (await invite(alice_ws, bob))["call"]

    busy = await invite(cy_ws, bob)
    assert busy["state"] == "busy"
    assert busy["call"] != first
    (log,) = await call_logs(cy_ws, cy_direct)
    assert (log["from"], log["body"]["outcome"]) == (cy.id, "missed")
    # One call per user: the caller cannot place a second one either.
    second = await alice_ws.request(Call(rid=9999, action="invite", peer=cy.id, media="audio"))
    assert err_code(second) == "conflict"
    rings = [e for e in await pushes_within(bob_ws, CallEvent, 0.2) if e.action == "ring"]
    assert [ring.call for ring in rings] == [first]


async def test_a_disconnected_device_ends_its_call_after_the_grace(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    desk = await connect(bob.token, device="desk")
    call = (await invite(laptop, bob))["call"]
    ok(await act(desk, "accept", call))
    await next_push(laptop, CallEvent)

    await desk.ws.aclose()
    end = await ended(laptop)
    assert (end.outcome, end.reason) == ("completed", "disconnected")
    (log,) = await logs_now(laptop, direct)
    assert log["body"]["outcome"] == "completed"


async def test_a_device_back_within_the_grace_keeps_its_call(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    desk = await connect(bob.token, device="desk")
    call = (await invite(laptop, bob))["call"]
    ok(await act(desk, "accept", call))

    await desk.ws.aclose()
    desk = await connect(bob.token, device="desk")
    await trio.sleep(GRACE_S + 0.2)
    ok(await act(desk, "answer", call, sdp="v=0 again"))
    assert (await call_event(laptop, "answer")).sdp == "v=0 again"


async def test_hostile_and_malformed_call_requests_are_refused_and_store_nothing(
    api: Api, connect: Connect
) -> None:
    alice, bob, eve = [await api.account() for _ in range(3)]
    direct = await api.befriend(alice, bob)
    await api.befriend(alice, eve)
    laptop = await connect(alice.token, device="laptop")
    desk = await connect(bob.token, device="desk")
    phone = await connect(bob.token, device="phone")
    eve_ws = await connect(eve.token)

    assert err_code(await invite_raw(eve_ws, bob)) == "forbidden"  # not friends
    assert err_code(await invite_raw(eve_ws, eve)) == "bad_request"  # oneself
    unknown = Call(rid=eve_ws.rid(), action="invite", peer="no-such-user", media="audio")
    assert err_code(await eve_ws.request(unknown)) == "forbidden"
    call = (await invite(laptop, bob))["call"]
    assert err_code(await act(desk, "offer", call, sdp="v=0")) == "forbidden"  # not bound yet
    assert err_code(await act(laptop, "accept", call)) == "forbidden"  # the caller
    assert err_code(await act(phone, "cancel", call)) == "forbidden"  # not the caller
    assert err_code(await act(laptop, "reject", call)) == "forbidden"  # not the callee
    for action, fields in (
        ("accept", {}),
        ("reject", {}),
        ("cancel", {}),
        ("hangup", {}),
        ("offer", {"sdp": "v=0"}),
        ("candidate", {"candidate": CANDIDATE}),
    ):
        assert err_code(await act(eve_ws, action, call, **fields)) == "forbidden", action
    assert err_code(await act(eve_ws, "accept", "no-such-call")) == "not_found"
    assert err_code(await act(laptop, "offer", call, sdp="v=0")) == "conflict"  # not answered

    ok(await act(desk, "accept", call))
    assert err_code(await act(phone, "accept", call)) == "conflict"  # answered elsewhere
    assert err_code(await act(phone, "hangup", call)) == "forbidden"  # not the bound device
    assert err_code(await act(laptop, "cancel", call)) == "conflict"  # no longer ringing
    for bad in (
        [43, 501, {"action": "invite", "peer": bob.id}],
        [43, 502, {"action": "invite", "peer": bob.id, "media": "hologram"}],
        [43, 503, {"action": "offer", "call": call, "sdp": ""}],
        [43, 504, {"action": "offer", "call": call, "sdp": "x" * 16385}],
        [43, 505, {"action": "candidate", "call": call, "candidate": "a=candidate"}],
        [43, 506, {"action": "candidate", "call": call, "candidate": {"sdp_m_line_index": -1}}],
        [43, 507, {"action": "hangup", "call": "bad id!"}],
        [43, 508, {"call": call}],
    ):
        await laptop.send(msgpack.packb(bad))
        assert err_code(await laptop.reply(bad[1])) == "bad_request", bad  # type: ignore[arg-type]
    # Nothing of that was stored, and the call goes on.
    pulled = ok(await desk.request(Pull(rid=desk.rid(), cid=direct, after=0)))
    assert pulled["max_seq"] == 0
    ok(await act(laptop, "offer", call, sdp="v=0 still here"))
    assert (await call_event(desk, "offer")).sdp == "v=0 still here"


async def invite_raw(raw: Raw, peer: Account) -> object:
    await raw.send(encode(Call(rid=4000, action="invite", peer=peer.id, media="audio")))
    return await raw.reply(4000)


async def test_a_caller_hanging_up_while_ringing_cancels(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    phone = await connect(bob.token, device="phone")
    call = (await invite(laptop, bob))["call"]
    await call_event(phone, "ring")

    ok(await act(laptop, "hangup", call))
    end = await ended(phone)
    assert (end.outcome, end.reason) == ("cancelled", "cancelled")
    assert [log["body"]["outcome"] for log in await logs_now(phone, direct)] == ["cancelled"]
    assert err_code(await act(laptop, "hangup", call)) == "not_found"


async def test_a_caller_gone_while_ringing_cancels_after_the_grace(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    phone = await connect(bob.token, device="phone")
    await invite(laptop, bob)
    await call_event(phone, "ring")

    await laptop.ws.aclose()
    end = await ended(phone)
    assert (end.outcome, end.reason) == ("cancelled", "disconnected")


async def test_unfriended_mid_call_ends_the_call_and_no_log_is_forced_in(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    laptop = await connect(alice.token, device="laptop")
    desk = await connect(bob.token, device="desk")
    call = (await invite(laptop, bob))["call"]
    ok(await act(desk, "accept", call))
    gone = await api.http.delete(f"/api/v1/friends/{bob.id}", headers=api.auth(alice))
    assert gone.status_code in (200, 204), gone.text

    ok(await act(desk, "hangup", call))
    assert (await ended(laptop)).outcome == "completed"
    # Neither may write there any more, so the log is refused: nothing stored.
    await trio.sleep(0.2)
    pulled = ok(await laptop.request(Pull(rid=laptop.rid(), cid=direct, after=0)))
    assert pulled["max_seq"] == 0
    # And a new call is refused.
    assert err_code(await invite_raw(laptop, bob)) == "forbidden"
