"""``server.trusted_proxies`` over real sockets: forwarded client addresses are
believed from a trusted proxy only, for the per-address login limit, the
address sessions record, and the gateway's logs.

Every request here comes from 127.0.0.1; whether that peer is a trusted proxy
is what each test configures.
"""

from __future__ import annotations

import contextlib
import logging

import pytest
import trio
from trio_websocket import ConnectionClosed, connect_websocket_url

from sandcat.app import Server
from sandcat.protocol import Ping, encode
from tests.gateway.raw import TIMEOUT_S, Raw
from tests.scene import Api

TRUSTED = {"server.trusted_proxies": "127.0.0.1", "auth.login_failures_per_ip": 3}
UNTRUSTED = {"auth.login_failures_per_ip": 3}


def trusted(value: dict[str, object]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("server_overrides", [value])


async def _fail_login(api: Api, n: int, forwarded_for: str) -> int:
    reply = await api.http.post(
        "/api/v1/auth/login",
        json={"login": f"nobody{n}", "password": "wrong password 1"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return reply.status_code


@trusted(TRUSTED)
async def test_a_trusted_proxy_gets_the_address_limit_per_forwarded_client(api: Api) -> None:
    # max - 1, max: refused as a bad login; max + 1: the address is limited.
    assert [await _fail_login(api, n, "203.0.113.1") for n in range(4)] == [401, 401, 401, 429]
    # Another client behind the same proxy is not limited by the first one.
    assert await _fail_login(api, 9, "203.0.113.2") == 401
    # A client cannot pick its address: the proxy appends what it saw, and that counts.
    assert await _fail_login(api, 10, "203.0.113.2, 203.0.113.1") == 429


@trusted(TRUSTED)
async def test_an_ipv6_client_is_limited_by_its_64_not_by_each_address(api: Api) -> None:
    # One subscriber's /64 holds 2**64 addresses: each failure from a new one still
    # counts against the same client.
    spread = [f"2001:db8:77:1::{n + 1:x}" for n in range(4)]
    codes = [await _fail_login(api, n, address) for n, address in enumerate(spread)]
    assert codes == [401, 401, 401, 429]
    assert await _fail_login(api, 8, "2001:db8:77:2::1") == 401  # the next /64 is not limited


@trusted(UNTRUSTED)
async def test_spoofed_headers_from_an_untrusted_peer_are_ignored(api: Api) -> None:
    codes = [await _fail_login(api, n, f"203.0.113.{n}") for n in range(4)]
    assert codes == [401, 401, 401, 429]  # every attempt counted against 127.0.0.1


async def _session_ips(api: Api, username: str, headers: dict[str, str]) -> list[str | None]:
    """Log in and refresh through these headers; the addresses the session list shows."""
    await api.register(username)
    reply = await api.http.post(
        "/api/v1/auth/login",
        json={"login": username, "password": "correct horse 1", "device": "phone"},
        headers=headers,
    )
    assert reply.status_code == 200, reply.text
    refreshed = await api.http.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": reply.json()["refresh_token"]},
        headers=headers,
    )
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    listed = await api.http.get("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    return [session["ip"] for session in listed.json()["sessions"]]


@trusted(TRUSTED)
async def test_sessions_record_the_forwarded_address(api: Api) -> None:
    headers = {"X-Forwarded-For": "198.51.100.7"}
    assert await _session_ips(api, "proxied", headers) == ["198.51.100.7"]
    rfc = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}
    assert await _session_ips(api, "proxied6", rfc) == ["2001:db8::7"]


@trusted(UNTRUSTED)
async def test_sessions_record_the_peer_when_it_is_not_trusted(api: Api) -> None:
    headers = {"X-Forwarded-For": "198.51.100.7", "Forwarded": "for=198.51.100.8"}
    assert await _session_ips(api, "direct", headers) == ["127.0.0.1"]


ABUSE = {"gateway.rate_per_s": 1, "gateway.rate_burst": 1, "gateway.abuse_strikes": 1}


async def _abuse_log(
    server: Server, api: Api, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> str:
    """Connect with a forwarded address, ignore the rate limit; the gateway's warning."""
    account = await api.account()
    with trio.fail_after(TIMEOUT_S):
        ws = await connect_websocket_url(
            nursery,
            f"ws://127.0.0.1:{server.ws_port}/ws",
            subprotocols=["sandcat.v1"],
            extra_headers=[(b"X-Forwarded-For", b"192.0.2.77")],
        )
    raw = Raw(ws)
    try:
        with caplog.at_level(logging.WARNING, logger="sandcat.gateway.connection"):
            await raw.hello(account.token)
            with contextlib.suppress(ConnectionClosed):
                for rid in range(2, 8):
                    await raw.send(encode(Ping(rid=rid)))
            assert await raw.close_code() == 4004
    finally:
        await ws.aclose()
        await ws._close_stream()  # trio-websocket keeps it when the server closed first
    return caplog.text


@trusted({**ABUSE, "server.trusted_proxies": "127.0.0.0/8"})
async def test_the_gateway_logs_the_forwarded_address_of_a_trusted_proxys_client(
    server: Server, api: Api, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    assert "closing the connection of 192.0.2.77" in await _abuse_log(server, api, nursery, caplog)


@trusted(ABUSE)
async def test_the_gateway_logs_the_peer_when_it_is_not_trusted(
    server: Server, api: Api, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    text = await _abuse_log(server, api, nursery, caplog)
    assert "closing the connection of 127.0.0.1" in text
    assert "192.0.2.77" not in text
