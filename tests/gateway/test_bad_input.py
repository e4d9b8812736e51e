"""protocol/SPEC.md §2 and §6, row by row: every bad input gets its documented answer.

Each test also keeps a control connection open beside the hostile one and
checks it still works afterwards: one client's garbage costs nobody else.
"""

from __future__ import annotations

import msgpack
import pytest
import trio

from sandcat.app import Server
from sandcat.protocol import (
    Err,
    ErrorCode,
    Hello,
    Ok,
    Ping,
    Pull,
    Send,
    encode,
)
from tests.gateway.raw import Connect, Raw
from tests.scene import Account, Api


async def _control(connect: Connect, account: Account) -> Raw:
    return await connect(account.token, device="control")


async def _still_serves(control: Raw) -> None:
    reply = await control.request(Ping(rid=control.rid()))
    assert isinstance(reply, Ok)
    assert "server_time" in reply.body


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def _text(cid: str, cmid: str, text: str = "hi") -> Send:
    return Send(rid=1, cid=cid, cmid=cmid, kind=1, body={"text": text})


async def _max_seq(conn: Raw, cid: str) -> int:
    reply = await conn.request(Pull(rid=conn.rid(), cid=cid, after=0))
    assert isinstance(reply, Ok), reply
    return int(reply.body["max_seq"])  # type: ignore[call-overload]


async def test_oversized_frame_closes_with_1009_and_stores_nothing(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    control = await _control(connect, bob)
    hostile = await connect(alice.token)
    big = encode(_text(cid, "big", "x" * 16000))
    padded = msgpack.packb([10, 7, {"cid": cid, "cmid": "c", "kind": 1000, "body": b"x" * 70_000}])
    assert len(padded) > 65536 > len(big)
    await hostile.send(padded)
    assert await hostile.close_code() == 1009
    assert await _max_seq(control, cid) == 0
    await _still_serves(control)


async def test_text_message_closes_with_1003(api: Api, connect: Connect) -> None:
    alice = await api.account()
    control = await _control(connect, alice)
    hostile = await connect(alice.token)
    await hostile.send("hello")
    assert await hostile.close_code() == 1003
    await _still_serves(control)


@pytest.mark.parametrize(
    ("payload", "rid"),
    [
        pytest.param(b"\xc1", None, id="invalid-msgpack"),
        pytest.param(msgpack.packb([4, 9, {}]) + b"\x00", None, id="trailing-bytes"),
        pytest.param(msgpack.packb([4, 9, msgpack.ExtType(1, b"x")]), 9, id="ext-type"),
        pytest.param(msgpack.packb([4, 9, {1: "x"}]), 9, id="non-str-key"),
        pytest.param(
            msgpack.packb([10, 9, {"body": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}]),
            9,
            id="too-deep",
        ),
        pytest.param(msgpack.packb([4, 9]), None, id="two-elements"),
        pytest.param(msgpack.packb({"op": 4}), None, id="not-an-array"),
        pytest.param(msgpack.packb([4, 9, []]), 9, id="body-not-a-map"),
        pytest.param(msgpack.packb([4, 2**32, {}]), None, id="rid-too-big"),
        pytest.param(msgpack.packb(["ping", 9, {}]), 9, id="op-not-int"),
    ],
)
async def test_malformed_frame_gets_bad_frame_then_1007(
    api: Api, connect: Connect, payload: bytes, rid: int | None
) -> None:
    alice = await api.account()
    control = await _control(connect, alice)
    hostile = await connect(alice.token)
    await hostile.send(payload)
    if rid is not None:
        reply = await hostile.recv()
        assert isinstance(reply, Err)
        assert (reply.rid, reply.code) == (rid, ErrorCode.BAD_FRAME)
    assert await hostile.close_code() == 1007
    await _still_serves(control)


async def test_unknown_op_gets_unknown_op_and_connection_stays(api: Api, connect: Connect) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    await conn.send(msgpack.packb([99, 5, {}]))
    reply = await conn.reply(5)
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.UNKNOWN_OP
    await _still_serves(conn)


async def test_frame_before_hello_gets_unauthenticated_then_4002(
    api: Api, connect: Connect
) -> None:
    alice = await api.account()
    control = await _control(connect, alice)
    hostile = await connect()
    reply = await hostile.request(Ping(rid=3))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.UNAUTHENTICATED
    assert await hostile.close_code() == 4002
    await _still_serves(control)


@pytest.mark.parametrize("token", ["not-a-token", "e30.e30.e30", "x" * 4000])
async def test_bad_token_gets_unauthorized_then_4002(
    api: Api, connect: Connect, token: str
) -> None:
    alice = await api.account()
    control = await _control(connect, alice)
    hostile = await connect()
    reply = await hostile.request(Hello(rid=1, token=token, device="d", platform="test"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.UNAUTHORIZED
    assert await hostile.close_code() == 4002
    await _still_serves(control)


async def test_token_of_logged_out_session_gets_4002(api: Api, connect: Connect) -> None:
    alice = await api.account()
    reply = await api.http.post("/api/v1/auth/logout", headers=api.auth(alice))
    assert reply.status_code == 204
    hostile = await connect()
    answer = await hostile.request(Hello(rid=1, token=alice.token, device="d", platform="t"))
    assert isinstance(answer, Err)
    assert answer.code == ErrorCode.UNAUTHORIZED
    assert await hostile.close_code() == 4002


async def test_send_to_stranger_is_forbidden_and_consumes_no_seq(
    api: Api, connect: Connect
) -> None:
    alice, bob, mallory = await api.account(), await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    hostile = await connect(mallory.token)
    reply = await hostile.request(_text(cid, "m1"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.FORBIDDEN
    low, high = sorted((mallory.id, bob.id))
    reply = await hostile.request(_text(f"d:{low}:{high}", "m2"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.FORBIDDEN
    reply = await hostile.request(Pull(rid=7, cid=cid, after=0))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.FORBIDDEN
    member = await connect(alice.token)
    ack = await member.request(_text(cid, "a1"))
    assert isinstance(ack, Ok)
    assert ack.body["seq"] == 1
    await _still_serves(hostile)


async def test_send_to_group_of_others_is_forbidden(api: Api, connect: Connect) -> None:
    alice, bob, mallory = await api.account(), await api.account(), await api.account()
    await api.befriend(alice, bob)
    cid = await api.group(alice, [bob])
    hostile = await connect(mallory.token)
    reply = await hostile.request(_text(cid, "m1"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.FORBIDDEN
    owner = await connect(alice.token)
    assert await _max_seq(owner, cid) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"text": "x" * 16385},
        {"text": ""},
        {"text": 5},
        {},
        "just a string",
    ],
)
async def test_invalid_text_body_is_bad_request(api: Api, connect: Connect, body: object) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    conn = await connect(alice.token)
    reply = await conn.request(Send(rid=4, cid=cid, cmid="c", kind=1, body=body))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.BAD_REQUEST
    assert await _max_seq(conn, cid) == 0
    await _still_serves(conn)


async def test_invalid_fields_are_bad_request_and_connection_stays(
    api: Api, connect: Connect
) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    for body in (
        {"cid": "nope", "cmid": "c", "kind": 1, "body": {"text": "x"}},
        {"cid": "g:abc", "cmid": "", "kind": 1, "body": {"text": "x"}},
        {"cid": "g:abc", "cmid": "c", "kind": True, "body": {"text": "x"}},
    ):
        await conn.send(msgpack.packb([10, 11, body]))
        reply = await conn.reply(11)
        assert isinstance(reply, Err)
        assert reply.code == ErrorCode.BAD_REQUEST
    await _still_serves(conn)


async def test_second_hello_is_refused_but_connection_stays(api: Api, connect: Connect) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    reply = await conn.request(Hello(rid=2, token=alice.token, device="d1", platform="t"))
    assert isinstance(reply, Err)
    await _still_serves(conn)


async def _handshake(server: Server, path: str, protocols: str | None) -> bytes:
    """Send an upgrade request by hand; the status line of the answer."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        + (f"Sec-WebSocket-Protocol: {protocols}\r\n" if protocols else "")
        + "\r\n"
    )
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.ws_port)
        async with stream:
            await stream.send_all(request.encode())
            answer = b""
            while b"\r\n" not in answer:
                answer += await stream.receive_some(4096)
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("path", "protocols", "status"),
    [
        pytest.param("/ws", "sandcat.v9", b"400", id="unknown-subprotocol"),
        pytest.param("/ws", "sandcat.v9, sandcat.v1", b"101", id="v1-among-others"),
        pytest.param("/ws", None, b"101", id="no-subprotocol-is-v1"),
        pytest.param("/chat", "sandcat.v1", b"404", id="wrong-path"),
    ],
)
async def test_handshake_rules(
    server: Server, path: str, protocols: str | None, status: bytes
) -> None:
    line = await _handshake(server, path, protocols)
    assert line.split()[1] == status, line


async def test_hostile_clients_do_not_stop_others(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    receiver = await connect(bob.token)
    async with trio.open_nursery() as nursery:
        for index in range(10):

            async def garbage(index: int = index) -> None:
                hostile = await connect()
                await hostile.send(bytes([0xC1, index]))
                await hostile.close_code()

            nursery.start_soon(garbage)
        sender = await connect(alice.token)
        ack = await sender.request(_text(cid, "still-fine"))
        assert isinstance(ack, Ok)
    push = await receiver.push()
    assert getattr(push, "seq", None) == 1
