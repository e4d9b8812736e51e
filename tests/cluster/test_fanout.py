"""Session ends and READ_STATE pushes reach every instance through Redis.

Two instances share one PostgreSQL database and one Redis channel (no Kafka:
these events do not go through the bus). A logout or a refresh-token reuse
made on instance A closes the session's sockets on instance B with 4007
within a second; a READ on A pushes READ_STATE to the reader's other device
on B and to the direct peer on B. A hostile event on the channel changes
nothing and the instances keep serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import httpx
import msgpack
import pytest
import trio
from trio_websocket import connect_websocket_url

from sandcat.app import Server, run_server
from sandcat.bus.redis import open_redis_broadcast
from sandcat.protocol import Notify, Ok, Ping, Read, ReadState, Send
from tests.cluster.conftest import TOKEN_SECRET, Instance
from tests.gateway.raw import TIMEOUT_S, Raw
from tests.passwords import FAST_PASSWORDS
from tests.scene import Api, make_config


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
                "backends.redis_prefix": f"{redis_channel}:",
                "auth.token_secret": TOKEN_SECRET,
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
    """HTTP calls go to instance A."""
    async with httpx.AsyncClient(base_url=pair[0].http_url, timeout=10) as http:
        yield Api(http)


class Sockets:
    """Raw connections to either instance; all closed, sockets included, at teardown."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.opened: list[Raw] = []

    async def open(self, instance: Instance, token: str, device: str) -> Raw:
        with trio.fail_after(TIMEOUT_S):
            ws = await connect_websocket_url(
                self._nursery, instance.ws_url, subprotocols=["sandcat.v1"]
            )
        raw = Raw(ws)
        self.opened.append(raw)
        await raw.hello(token, device)
        return raw


@pytest.fixture
async def sockets(nursery: trio.Nursery) -> AsyncIterator[Sockets]:
    opened = Sockets(nursery)
    yield opened
    with trio.move_on_after(TIMEOUT_S):
        for raw in opened.opened:
            await raw.ws.aclose()
            await raw.ws._close_stream()  # see tests/gateway/conftest.py


async def _pings(raw: Raw) -> None:
    assert isinstance(await raw.request(Ping(rid=raw.rid())), Ok)


async def test_logout_on_a_closes_the_sessions_sockets_on_b_with_4007_within_a_second(
    pair: tuple[Instance, Instance], api: Api, sockets: Sockets
) -> None:
    _, b = pair
    alice = await api.account("phone")
    tablet_login = await api.login(alice.username, alice.password, "tablet")
    phone = await sockets.open(b, alice.token, "phone")
    tablet = await sockets.open(b, tablet_login.token, "tablet")
    started = trio.current_time()
    reply = await api.http.post("/api/v1/auth/logout", headers=api.auth(alice))
    assert reply.status_code == 204
    assert await phone.close_code() == 4007
    assert trio.current_time() - started < 1
    await _pings(tablet)  # another session of the same user stays


async def test_refresh_token_reuse_on_a_closes_the_session_on_b(
    pair: tuple[Instance, Instance], api: Api, sockets: Sockets
) -> None:
    _, b = pair
    alice = await api.account("phone")
    phone = await sockets.open(b, alice.token, "phone")
    for expected in (200, 401):
        reply = await api.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
        )
        assert reply.status_code == expected, reply.text
    assert await phone.close_code() == 4007


async def test_read_on_a_pushes_read_state_to_the_readers_other_device_and_the_peer_on_b(
    pair: tuple[Instance, Instance], api: Api, sockets: Sockets
) -> None:
    a, b = pair
    alice, bob = await api.account("laptop"), await api.account("phone")
    cid = await api.befriend(alice, bob)
    bob_desk = await api.login(bob.username, bob.password, "desk")
    laptop = await sockets.open(a, alice.token, "laptop")
    phone = await sockets.open(a, bob.token, "phone")
    desk = await sockets.open(b, bob_desk.token, "desk")
    alice_on_b = await sockets.open(b, alice.token, "tablet")
    sent = await laptop.request(
        Send(rid=laptop.rid(), cid=cid, cmid="m1", kind=1, body={"text": "hi"})
    )
    assert isinstance(sent, Ok), sent
    assert isinstance(await phone.request(Read(rid=phone.rid(), cid=cid, seq=1)), Ok)
    expected = ReadState(cid=cid, user=bob.id, seq=1)
    with trio.fail_after(1):
        assert await _next_read_state(desk) == expected  # the reader's other device, on B
        assert await _next_read_state(alice_on_b) == expected  # the direct peer, on B
        assert await _next_read_state(laptop) == expected  # and the peer on A, as before


async def test_a_friend_request_made_on_a_is_notified_live_on_b(
    pair: tuple[Instance, Instance], api: Api, sockets: Sockets
) -> None:
    _, b = pair
    alice, bob = await api.account("laptop"), await api.account("phone")
    phone_on_b = await sockets.open(b, bob.token, "phone")
    reply = await api.http.post(
        "/api/v1/friends/requests", json={"to": bob.id}, headers=api.auth(alice)
    )
    assert reply.status_code == 201, reply.text
    with trio.fail_after(1):
        while not isinstance(frame := await phone_on_b.push(), Notify):
            pass
    assert frame.type == "friend.requested"
    assert frame.nseq == 1


def _end(user: str, *, code: int = 4007, reason: str = "") -> bytes:
    """A session end for all of ``user``'s sessions, but with a bad field."""
    event = {"i": "intruder", "t": "end", "u": user, "s": None, "c": code, "r": reason}
    return bytes(msgpack.packb(event))


async def _next_read_state(raw: Raw) -> ReadState:
    while True:
        frame = await raw.push()
        if isinstance(frame, ReadState):
            return frame


@pytest.mark.parametrize(
    "event",
    [
        b"",
        b"\xc1",  # never valid msgpack
        b"\x92\x01\x02",  # not a map
        b"\x81\xa1i\x01",  # instance is not a string
        b"\x82\xa1i\xa1x\xa1t\xa3end",  # an end without its fields
        b"\x83\xa1i\xa1x\xa1t\xa4push\xa2to\x91\x91\xa1u",  # a target without its device
        b"\x81\x91\x01\x01",  # a list as a map key
        partial(_end, code=1000),  # not an application close code
        partial(_end, reason="x" * 124),  # does not fit a close frame
        b"\x00" * (1 << 21),  # oversized
    ],
)
async def test_a_hostile_event_on_the_channel_changes_nothing(
    pair: tuple[Instance, Instance],
    api: Api,
    sockets: Sockets,
    redis_url: str,
    redis_channel: str,
    event: bytes | Callable[[str], bytes],
) -> None:
    _, b = pair
    alice = await api.account("phone")
    phone = await sockets.open(b, alice.token, "phone")
    async with open_redis_broadcast(redis_url, channel=redis_channel, timeout_s=5) as intruder:
        await intruder.publish(event if isinstance(event, bytes) else event(alice.id))
    await trio.sleep(0.05)
    await _pings(phone)
    reply = await api.http.post("/api/v1/auth/logout", headers=api.auth(alice))
    assert reply.status_code == 204
    assert await phone.close_code() == 4007  # and the channel still works
