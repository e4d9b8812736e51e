"""The SDK's signals: typing, presence (resubscribed after a reconnect) and a whole call."""

from __future__ import annotations

from typing import TypeVar

import pytest
import trio

from sandcat.app import Server
from sandcat.client import SandcatClientError, Session
from sandcat.protocol import CallEvent, Presence, TypingEvent
from tests.client.cast import Cast
from tests.client.proxy import Proxy

T = TypeVar("T")


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"signals.presence_batch_ms": 50}


async def next_signal(session: Session, kind: type[T]) -> T:
    with trio.fail_after(5):
        while True:
            event = await session.signals.receive()
            if isinstance(event, kind):
                return event


async def test_typing_presence_and_a_call(cast: Cast) -> None:
    ann, bob = await cast.person(), await cast.person()
    direct = await cast.befriend(ann, bob)
    async with cast.client(ann, "laptop") as a, cast.client(bob, "phone") as b:
        snapshot = await b.session.signals.watch_presence()
        assert snapshot.state == "online"
        assert [(u["user"], u["state"]) for u in snapshot.users] == [(ann.id, "online")]

        await a.session.signals.typing(direct)
        assert (await next_signal(b.session, TypingEvent)).user == ann.id
        with pytest.raises(SandcatClientError) as refused:
            await a.session.signals.typing(direct)
        assert refused.value.code == "rate_limited"

        placed = await a.session.signals.invite(bob.id, "video")
        assert placed.state == "ringing"
        ring = await next_signal(b.session, CallEvent)
        assert (ring.action, ring.call) == ("ring", placed.call)
        await b.session.signals.call("accept", placed.call)
        assert (await next_signal(a.session, CallEvent)).action == "accepted"
        await a.session.signals.call("offer", placed.call, sdp="v=0")
        assert (await next_signal(b.session, CallEvent)).sdp == "v=0"
        await b.session.signals.call("candidate", placed.call, candidate={"candidate": ""})
        assert (await next_signal(a.session, CallEvent)).candidate == {"candidate": ""}
        await a.session.signals.call("hangup", placed.call)
        assert (await next_signal(b.session, CallEvent)).outcome == "completed"
        log = await b.session.receive_message()
        assert (log.kind, log.sender) == (8, ann.id)


async def test_the_presence_subscription_survives_a_reconnect(
    cast: Cast, server: Server, nursery: trio.Nursery
) -> None:
    proxy = Proxy(server.ws_port)
    await nursery.start(proxy.serve)
    ann, bob = await cast.person(), await cast.person()
    await cast.befriend(ann, bob)
    async with cast.client(bob, "phone", ws_url=proxy.ws_url) as b:
        await b.session.signals.watch_presence("busy")
        proxy.cut()
        # The new connection subscribes again; its snapshot arrives as a PRESENCE.
        assert (await next_signal(b.session, Presence)).users == ()
        async with cast.client(ann, "laptop"):
            seen = await next_signal(b.session, Presence)
            assert [(u["user"], u["state"]) for u in seen.users] == [(ann.id, "online")]
    assert b.session.statistics().signals_dropped == 0
