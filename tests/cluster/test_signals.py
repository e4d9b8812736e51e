"""Typing, presence and calls across two instances sharing PostgreSQL and Redis.

The ephemeral signals travel over the Redis broadcast (channel
``<redis_channel>.signals``); presence and call state live in Redis, so busy
detection holds for users on different instances.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgpack
import pytest
import trio
from trio_websocket import connect_websocket_url

from sandcat.app import Server, run_server
from sandcat.bus.redis import open_redis_broadcast
from sandcat.protocol import Call, Ping, Presence, PresenceSet, Pull, Typing, TypingEvent
from tests.cluster.conftest import TOKEN_SECRET, Instance
from tests.gateway.raw import TIMEOUT_S, Raw
from tests.passwords import FAST_PASSWORDS
from tests.scene import Api, make_config
from tests.signals.watch import call_event, err_code, next_push, ok


@pytest.fixture
async def pair(
    tmp_path: Path, nursery: trio.Nursery, postgres_url: str, redis_url: str, redis_channel: str
) -> AsyncIterator[tuple[Instance, Instance]]:
    servers: list[Server] = []
    for name in ("a", "b"):
        config = make_config(
            tmp_path / name,
            **{
                "backends.database_url": postgres_url,
                "backends.redis_url": redis_url,
                "backends.redis_channel": redis_channel,
                "auth.token_secret": TOKEN_SECRET,
                "signals.presence_batch_ms": 50,
            },
        )
        servers.append(
            await nursery.start(
                lambda task_status, c=config: run_server(
                    c, passwords=FAST_PASSWORDS, task_status=task_status
                )
            )
        )
    yield Instance(servers[0]), Instance(servers[1])
    for server in servers:
        server.shutdown()


@pytest.fixture
async def api(pair: tuple[Instance, Instance]) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=pair[0].http_url, timeout=10) as http:
        yield Api(http)


@pytest.fixture
async def open_raw(nursery: trio.Nursery) -> AsyncIterator[object]:
    opened: list[Raw] = []

    async def open_on(instance: Instance, token: str, device: str) -> Raw:
        with trio.fail_after(TIMEOUT_S):
            ws = await connect_websocket_url(nursery, instance.ws_url, subprotocols=["sandcat.v1"])
        raw = Raw(ws)
        opened.append(raw)
        await raw.hello(token, device)
        return raw

    yield open_on
    with trio.move_on_after(TIMEOUT_S):
        for raw in opened:
            await raw.ws.aclose()
            await raw.ws._close_stream()  # see tests/gateway/conftest.py


async def test_typing_and_presence_reach_the_other_instance(
    pair: tuple[Instance, Instance], api: Api, open_raw: object
) -> None:
    a, b = pair
    opener = open_raw  # type: ignore[assignment]
    alice, bob = await api.account("laptop"), await api.account("phone")
    direct = await api.befriend(alice, bob)
    phone = await opener(b, bob.token, "phone")  # type: ignore[operator]
    ok(await phone.request(PresenceSet(rid=phone.rid())))

    laptop = await opener(a, alice.token, "laptop")  # type: ignore[operator]
    seen = await next_push(phone, Presence)
    assert [(e["user"], e["state"]) for e in seen.users] == [(alice.id, "online")]
    ok(await laptop.request(Typing(rid=laptop.rid(), cid=direct)))
    typing = await next_push(phone, TypingEvent)
    assert (typing.cid, typing.user) == (direct, alice.id)

    await laptop.ws.aclose()
    gone = await next_push(phone, Presence)
    assert [e["state"] for e in gone.users] == ["offline"]


async def test_a_call_between_instances_with_busy_detection_and_its_log(
    pair: tuple[Instance, Instance], api: Api, open_raw: object
) -> None:
    a, b = pair
    opener = open_raw  # type: ignore[assignment]
    alice, bob, cy = [await api.account("d") for _ in range(3)]
    direct = await api.befriend(alice, bob)
    await api.befriend(cy, alice)
    laptop = await opener(a, alice.token, "laptop")  # type: ignore[operator]
    phone = await opener(a, bob.token, "phone")  # type: ignore[operator]
    desk = await opener(b, bob.token, "desk")  # type: ignore[operator]
    cy_ws = await opener(b, cy.token, "tablet")  # type: ignore[operator]

    placed = ok(await laptop.request(Call(rid=9, action="invite", peer=bob.id, media="audio")))
    call = placed["call"]
    await call_event(desk, "ring")
    # Alice is in a call (state in Redis): Cy, on the other instance, gets busy.
    busy = ok(await cy_ws.request(Call(rid=9, action="invite", peer=alice.id, media="audio")))
    assert busy["state"] == "busy"

    ok(await desk.request(Call(rid=desk.rid(), action="accept", call=call)))
    for device in (laptop, phone):
        assert (await call_event(device, "accepted")).device == "desk"
    ok(await laptop.request(Call(rid=laptop.rid(), action="offer", call=call, sdp="v=0 a")))
    assert (await call_event(desk, "offer")).sdp == "v=0 a"
    ok(await desk.request(Call(rid=desk.rid(), action="answer", call=call, sdp="v=0 b")))
    assert (await call_event(laptop, "answer")).sdp == "v=0 b"
    # Bob's phone (not bound) may not drive the call, on either instance.
    assert err_code(await phone.request(Call(rid=90, action="hangup", call=call))) == "forbidden"

    ok(await desk.request(Call(rid=desk.rid(), action="hangup", call=call)))
    assert (await call_event(laptop, "ended")).outcome == "completed"
    with trio.fail_after(5):
        while True:
            msgs = ok(await laptop.request(Pull(rid=laptop.rid(), cid=direct, after=0)))["msgs"]
            if msgs:
                break
            await trio.sleep(0.05)
    assert [(m["kind"], m["body"]["outcome"]) for m in msgs] == [(8, "completed")]


HOSTILE = [
    b"\xc1",
    b"\x81\xa1i\x01",
    msgpack.packb({"i": "x", "t": "f", "to": [["u", 1, None]], "f": b"\x93\x2c\x00\x80"}),
    msgpack.packb({"i": "x", "t": "p", "u": "bad id!", "s": "online", "l": None, "to": []}),
    msgpack.packb({"i": "x", "t": "p", "u": "u", "s": "dancing", "l": None, "to": ["u"]}),
    msgpack.packb({"i": "x", "t": "zz"}),
    b"\x00" * (1 << 21),
]


async def test_hostile_signal_events_change_nothing(
    pair: tuple[Instance, Instance],
    api: Api,
    open_raw: object,
    redis_url: str,
    redis_channel: str,
) -> None:
    a, b = pair
    opener = open_raw  # type: ignore[assignment]
    alice, bob = await api.account("phone"), await api.account("desk")
    direct = await api.befriend(alice, bob)
    phone = await opener(b, alice.token, "phone")  # type: ignore[operator]
    desk = await opener(a, bob.token, "desk")  # type: ignore[operator]
    channel = f"{redis_channel}.signals"
    async with open_redis_broadcast(redis_url, channel=channel, timeout_s=5) as intruder:
        for event in HOSTILE:
            await intruder.publish(event)
    ok(await phone.request(Ping(rid=phone.rid())))
    # The channel still works: a real signal goes through after the garbage.
    ok(await desk.request(Typing(rid=desk.rid(), cid=direct)))
    assert (await next_push(phone, TypingEvent)).user == bob.id
    assert [f for f in phone.pushes if not isinstance(f, TypingEvent)] == []
