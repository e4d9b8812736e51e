"""Rate limits, abuse, and the per-connection error boundary (protocol/SPEC.md §6, §10)."""

from __future__ import annotations

import pytest
import trio

from sandcat.app import Server
from sandcat.gateway.operations import Operations
from sandcat.protocol import Err, ErrorCode, Ok, Ping, Sync, encode
from tests.gateway.raw import Connect
from tests.scene import Api


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"gateway.rate_per_s": 5, "gateway.rate_burst": 10, "gateway.abuse_strikes": 20}


async def test_over_the_rate_gets_rate_limited_with_a_wait(api: Api, connect: Connect) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    for rid in range(100, 125):
        await conn.send(encode(Ping(rid=rid)))
    replies = [await conn.reply(rid) for rid in range(100, 125)]
    limited = [r for r in replies if isinstance(r, Err)]
    assert limited, "a burst beyond rate_burst must be refused"
    assert all(r.code == ErrorCode.RATE_LIMITED for r in limited)
    assert all(r.retry_after_ms and 0 < r.retry_after_ms <= 1000 for r in limited)
    await trio.sleep(0.5)
    reply = await conn.request(Ping(rid=1))
    assert isinstance(reply, Ok)


async def test_ignoring_the_limit_closes_with_4004_and_others_are_served(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    control = await connect(bob.token)
    hostile = await connect(alice.token, device="flood")
    for rid in range(1, 200):
        await hostile.send(encode(Ping(rid=rid)))
    assert await hostile.close_code() == 4004
    reply = await control.request(Ping(rid=control.rid()))
    assert isinstance(reply, Ok)


async def test_a_bug_in_a_request_ends_only_that_connection(
    api: Api, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await api.account(), await api.account()
    control = await connect(bob.token)
    victim = await connect(alice.token)

    async def broken(self: Operations, conn: object, frame: Sync) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Operations, "_sync", broken)
    reply = await victim.request(Sync(rid=5))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.INTERNAL
    assert "simulated" not in reply.message
    assert await victim.close_code() == 1011
    assert isinstance(await control.request(Ping(rid=control.rid())), Ok)


async def test_drain_closes_connections_that_never_said_hello(
    server: Server, connect: Connect
) -> None:
    idle = await connect()
    with trio.fail_after(1.5):
        server.shutdown()
        assert await idle.close_code() == 1001
