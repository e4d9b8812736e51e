"""protocol/SPEC.md §6, session rules: authentication, device slots, heartbeat, limits, shutdown.

Everything runs against a real server over real sockets; timeouts the rules
name are configured small per test (``server_overrides``), and tokens that
expire soon, or expired long ago, are minted with the server's own key.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from sandcat.app import Server, run_server
from sandcat.clock import system_clock
from sandcat.domain.keyring import KeyRing, SigningKey
from sandcat.domain.tokens import AccessToken, Tokens
from sandcat.protocol import (
    Auth,
    Err,
    ErrorCode,
    GoAway,
    Hello,
    Msg,
    Ok,
    Ping,
    Pull,
    Send,
    encode,
)
from tests.gateway.raw import Connect, Deaf, Raw, frames_until_close, ok_body
from tests.passwords import FAST_PASSWORDS
from tests.scene import Account, Api, make_config

#: The shortest access-token lifetime the config allows; minting shifts the clock.
_TTL_S = 30


def configured(overrides: dict[str, object]) -> pytest.MarkDecorator:
    """Run a test against a server with these config overrides."""
    return pytest.mark.parametrize("server_overrides", [pytest.param(overrides, id="configured")])


def _tokens(tmp_path: Path, *, shift_ms: int = 0) -> Tokens:
    """The server's token service (same key: ``server`` keeps it in its database)."""
    with closing(sqlite3.connect(tmp_path / "data" / "sandcat.db")) as db:
        (hexed,) = db.execute("SELECT secret FROM token_keys WHERE id = 1").fetchone()
    clock = lambda: system_clock() + shift_ms  # noqa: E731
    keys = KeyRing([SigningKey("1", bytes.fromhex(hexed), 0)], access_ttl_s=_TTL_S, clock=clock)
    return Tokens(keys, access_ttl_s=_TTL_S, clock=clock)


def _mint(tmp_path: Path, account: Account, *, expires_in_ms: int) -> AccessToken:
    """A token of ``account``'s session expiring within a second before ``expires_in_ms``.

    Expiry has whole-second resolution, so the token expires somewhere in
    ``(now + expires_in_ms - 1000, now + expires_in_ms]``.
    """
    claims = _tokens(tmp_path).decode_access(account.token)
    issuer = _tokens(tmp_path, shift_ms=expires_in_ms - _TTL_S * 1000)
    return issuer.issue_access(user=claims.user, device=claims.device, session=claims.session)


async def _pings(conn: Raw) -> None:
    reply = await conn.request(Ping(rid=conn.rid()))
    assert isinstance(reply, Ok), reply


# -- HELLO ---------------------------------------------------------------------


@configured({"gateway.auth_timeout_s": 0.3})
async def test_no_hello_within_auth_timeout_closes_with_4003(
    server: Server, connect: Connect
) -> None:
    silent = await connect()
    started = trio.current_time()
    assert await silent.close_code() == 4003
    assert 0.25 <= trio.current_time() - started < 2


async def test_hello_without_token_uses_bearer_from_the_upgrade_request(
    api: Api, ws_url: str
) -> None:
    alice = await api.account()
    with trio.fail_after(5):
        async with open_websocket_url(
            ws_url,
            subprotocols=["sandcat.v1"],
            extra_headers=[(b"Authorization", f"Bearer {alice.token}".encode())],
        ) as ws:
            conn = Raw(ws)
            reply = await conn.request(Hello(rid=1, token=None, device="d1", platform="test"))
            assert isinstance(reply, Ok), reply
            assert reply.body["user"] == alice.id
            await _pings(conn)


async def test_hello_without_token_or_bearer_is_unauthorized_then_4002(
    server: Server, connect: Connect
) -> None:
    conn = await connect()
    reply = await conn.request(Hello(rid=1, token=None, device="d1", platform="test"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.UNAUTHORIZED
    assert await conn.close_code() == 4002


async def test_hello_ok_reports_user_device_session_time_and_limits(
    api: Api, connect: Connect, tmp_path: Path
) -> None:
    alice = await api.account()
    conn = await connect()
    before = system_clock()
    body = ok_body(await conn.hello(alice.token, device="phone-1"))
    assert set(body) == {
        "user",
        "device",
        "session",
        "server_time",
        "heartbeat_ms",
        "max_frame_bytes",
    }
    assert body["user"] == alice.id
    assert body["device"] == "phone-1"
    assert body["session"] == _tokens(tmp_path).decode_access(alice.token).session
    assert before - 1000 <= body["server_time"] <= system_clock() + 1000
    assert body["heartbeat_ms"] == 20_000
    assert body["max_frame_bytes"] == 65_536


async def test_frames_sent_right_after_hello_wait_for_it_instead_of_failing(
    api: Api, connect: Connect
) -> None:
    alice = await api.account()
    conn = await connect()
    await conn.send(encode(Hello(rid=1, token=alice.token, device="d1", platform="test")))
    await conn.send(encode(Ping(rid=2)))
    assert isinstance(await conn.reply(1), Ok)
    assert isinstance(await conn.reply(2), Ok)


async def test_expired_token_at_hello_is_unauthorized_then_4002(
    api: Api, connect: Connect, tmp_path: Path
) -> None:
    alice = await api.account()
    expired = _mint(tmp_path, alice, expires_in_ms=-3_600_000)
    conn = await connect()
    reply = await conn.request(Hello(rid=1, token=expired.token, device="d1", platform="test"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.UNAUTHORIZED
    assert await conn.close_code() == 4002


# -- device slots and session end ------------------------------------------------


async def test_second_hello_of_same_device_replaces_first_with_4001_others_coexist(
    api: Api, connect: Connect
) -> None:
    alice = await api.account()
    first = await connect(alice.token, device="phone")
    laptop = await connect(alice.token, device="laptop")
    second = await connect(alice.token, device="phone")
    assert await first.close_code() == 4001
    await _pings(second)
    await _pings(laptop)


async def test_logout_closes_that_sessions_sockets_with_4007_within_a_second(
    api: Api, connect: Connect
) -> None:
    alice = await api.account()
    other_session = await api.login(alice.username, alice.password, "tablet")
    phone = await connect(alice.token, device="phone")
    laptop = await connect(alice.token, device="laptop")
    tablet = await connect(other_session.token, device="tablet")
    started = trio.current_time()
    reply = await api.http.post("/api/v1/auth/logout", headers=api.auth(alice))
    assert reply.status_code == 204
    assert await phone.close_code() == 4007
    assert await laptop.close_code() == 4007
    assert trio.current_time() - started < 1
    await _pings(tablet)


# -- AUTH and token expiry -------------------------------------------------------


async def test_auth_with_fresh_token_of_same_user_returns_expires_at(
    api: Api, connect: Connect, tmp_path: Path
) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    fresh = await api.login(alice.username, alice.password, "d1")
    reply = await conn.request(Auth(rid=conn.rid(), token=fresh.token))
    assert isinstance(reply, Ok), reply
    assert reply.body == {"expires_at": _tokens(tmp_path).decode_access(fresh.token).expires_at_ms}
    await _pings(conn)


async def test_auth_with_another_users_token_is_unauthorized_and_connection_stays(
    api: Api, connect: Connect
) -> None:
    alice, mallory = await api.account(), await api.account()
    conn = await connect(alice.token)
    reply = await conn.request(Auth(rid=conn.rid(), token=mallory.token))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.UNAUTHORIZED
    await _pings(conn)


@configured({"gateway.reauth_grace_s": 0.5})
async def test_expired_session_without_auth_closes_with_4007_after_reauth_grace(
    api: Api, connect: Connect, tmp_path: Path
) -> None:
    alice = await api.account()
    short = _mint(tmp_path, alice, expires_in_ms=1500)
    conn = await connect(short.token)
    await _pings(conn)
    assert await conn.close_code() == 4007
    # Not before the token expired and the grace ran out (10 ms for timer slack).
    assert system_clock() >= short.expires_at_ms + 500 - 10


@configured({"gateway.reauth_grace_s": 0.5})
async def test_auth_before_expiry_keeps_the_session_past_the_old_tokens_grace(
    api: Api, connect: Connect, tmp_path: Path
) -> None:
    alice = await api.account()
    short = _mint(tmp_path, alice, expires_in_ms=1500)
    conn = await connect(short.token)
    reply = await conn.request(Auth(rid=conn.rid(), token=alice.token))
    assert isinstance(reply, Ok), reply
    await trio.sleep((short.expires_at_ms + 500 - system_clock()) / 1000 + 0.3)
    await _pings(conn)


# -- heartbeat -------------------------------------------------------------------


@configured({"gateway.heartbeat_s": 0.2, "gateway.idle_timeout_s": 1})
async def test_client_answering_no_pings_is_closed_with_4006(
    server: Server, api: Api, connect: Connect
) -> None:
    alice = await api.account()
    answering = await connect(alice.token, device="answering")
    async with await Deaf.open(server.ws_port) as deaf:
        reply = await deaf.request(Hello(rid=1, token=alice.token, device="deaf", platform="t"))
        assert isinstance(reply, Ok), reply
        started = trio.current_time()
        assert await deaf.close_code() == 4006
        assert 0.9 <= trio.current_time() - started < 3
    await _pings(answering)


#: A client's WebSocket ping with an empty payload (masked, as client frames must be).
_MASKED_PING = b"\x89\x80\x00\x00\x00\x00"


async def test_websocket_ping_after_the_servers_close_frame_does_not_crash_the_server(
    server: Server, api: Api, connect: Connect
) -> None:
    alice = await api.account()
    control = await connect(alice.token)
    async with await Deaf.open(server.ws_port) as hostile:
        await hostile.send_text("not binary")
        assert await hostile.close_code() == 1003
        # The ping crosses the close frame; the server is closing and must not pong.
        await hostile.send_raw(_MASKED_PING)
        await hostile.finish_close()
    await _pings(control)


async def test_ping_returns_server_time(api: Api, connect: Connect) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    before = system_clock()
    body = ok_body(await conn.request(Ping(rid=conn.rid())))
    assert set(body) == {"server_time"}
    assert before - 1000 <= body["server_time"] <= system_clock() + 1000


# -- shutdown and slow consumers --------------------------------------------------


# The batch window holds the SEND in the pipeline while shutdown begins.
@configured({"pipeline.batch_window_ms": 500})
async def test_shutdown_sends_goaway_acks_inflight_send_then_closes_with_1001(
    server: Server, api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    sender = await connect(alice.token)
    receiver = await connect(bob.token)
    await sender.send(encode(Send(rid=7, cid=cid, cmid="last", kind=1, body={"text": "bye"})))
    await trio.sleep(0.15)
    server.shutdown()
    frames, code = await frames_until_close(sender)
    assert code == 1001
    assert len(frames) == 2, frames
    goaway, ack = frames
    assert isinstance(goaway, GoAway)
    assert goaway.reconnect_after_ms > 0
    assert isinstance(ack, Ok)
    assert (ack.rid, ack.body["seq"]) == (7, 1)

    frames, code = await frames_until_close(receiver)
    assert code == 1001
    assert isinstance(frames[0], GoAway)
    assert [(f.seq, f.body) for f in frames if isinstance(f, Msg)] == [(1, {"text": "bye"})]


async def test_drain_of_open_sessions_does_not_wait_out_close_timeouts(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    stopped = trio.Event()

    async def serve(task_status: trio.TaskStatus[Server]) -> None:
        await run_server(
            make_config(tmp_path / "own"), passwords=FAST_PASSWORDS, task_status=task_status
        )
        stopped.set()

    server: Server = await nursery.start(serve)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
        alice = await Api(http).account()
    with trio.fail_after(5):
        async with open_websocket_url(
            f"ws://127.0.0.1:{server.ws_port}/ws", subprotocols=["sandcat.v1"]
        ) as ws:
            conn = Raw(ws)
            await conn.hello(alice.token)
            server.shutdown()
            assert (await frames_until_close(conn))[1] == 1001
            await ws._close_stream()  # trio-websocket leaves it open (see conftest)
    # The client answered the close at once; nothing is left to wait for.
    with trio.fail_after(0.5):
        await stopped.wait()


@configured({"gateway.outbound_queue_frames": 8})
async def test_client_that_stops_reading_is_closed_with_4005_while_sender_keeps_working(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    sender = await connect(alice.token)
    stalled = await connect(bob.token)  # reads its HELLO reply, then nothing
    text = "x" * 16_000
    for index in range(200):
        send = Send(rid=sender.rid(), cid=cid, cmid=f"m{index}", kind=1, body={"text": text})
        assert ok_body(await sender.request(send))["seq"] == index + 1
    await _pings(sender)
    # Frames written before the close still arrive whole; then the close code.
    frames, code = await frames_until_close(stalled)
    assert code == 4005
    seen = [frame.seq for frame in frames if isinstance(frame, Msg)]
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) < 200
    # Nothing is lost: the client catches up by PULL once it reconnects.
    again = await connect(bob.token)
    # (limit 3: three 16 KB texts still fit this test client's frame limit)
    page = ok_body(await again.request(Pull(rid=again.rid(), cid=cid, after=len(seen), limit=3)))
    assert [m["seq"] for m in page["msgs"]] == [len(seen) + 1, len(seen) + 2, len(seen) + 3]
    assert (page["more"], page["max_seq"]) == (True, 200)
    # ... and the sender was never held up by the stalled receiver.
    send = Send(rid=sender.rid(), cid=cid, cmid="after", kind=1, body={"text": "hi"})
    ack = ok_body(await sender.request(send))
    assert await again.push() == Msg(
        cid=cid, seq=201, mid=ack["mid"], sender=alice.id, kind=1, body={"text": "hi"}, ts=ack["ts"]
    )
