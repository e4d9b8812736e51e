"""The gateway's own WebSocket transport at the edges the protocol tests do not reach.

Hostile handshakes, sockets that never finish one, the write path when the
kernel's buffer is full (frames still arrive whole and in order), coalesced
replies to pipelined requests, pings both ways, and the close handshake.
"""

from __future__ import annotations

import httpx
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request
from wsproto.frame_protocol import FrameProtocol

from sandcat.app import Server
from sandcat.gateway.connection import Connection
from sandcat.protocol import Hello, Msg, Ok, Ping, Send, decode_server, encode
from tests.gateway.raw import Connect, Deaf, ok_body
from tests.scene import Api

_TIMEOUT_S = 5


def configured(overrides: dict[str, object]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("server_overrides", [pytest.param(overrides, id="configured")])


async def _exchange(server: Server, data: bytes, *, eof: bool = False) -> bytes:
    """Send raw bytes to the WebSocket port; what the server answers until it closes.

    A server that closes while request bytes are still unread resets the
    connection; what arrived before the reset is the answer.
    """
    answer = b""
    with trio.fail_after(_TIMEOUT_S):
        stream = await trio.open_tcp_stream("127.0.0.1", server.ws_port)
        async with stream:
            try:
                await stream.send_all(data)
                if eof:
                    await stream.send_eof()
                while chunk := await stream.receive_some(65536):
                    answer += chunk
            except trio.BrokenResourceError:
                pass
    return answer


async def _still_serves(connect: Connect, api: Api) -> None:
    account = await api.account()
    conn = await connect(account.token, device="control")
    assert isinstance(await conn.request(Ping(rid=conn.rid())), Ok)


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 3, id="tls-hello"),
        pytest.param(b"POST /ws HTTP/1.1\r\nHost: x\r\n\r\n", id="not-get"),
        pytest.param(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", id="no-upgrade"),
        pytest.param(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n",
            id="huge-headers",
        ),
    ],
)
async def test_a_request_that_is_no_websocket_upgrade_gets_400(
    server: Server, api: Api, connect: Connect, request_bytes: bytes
) -> None:
    answer = await _exchange(server, request_bytes)
    if len(request_bytes) > 65536 and not answer:
        pass  # the server closed with the headers unread: a reset beat the 400; never a 101
    else:
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    await _still_serves(connect, api)


async def test_a_client_gone_before_its_handshake_costs_nothing(
    server: Server, api: Api, connect: Connect
) -> None:
    assert await _exchange(server, b"GET /ws HTTP/1.1\r\nHo", eof=True) == b""
    await _still_serves(connect, api)


@configured({"gateway.auth_timeout_s": 0.3})
async def test_a_socket_that_never_finishes_its_handshake_is_closed(server: Server) -> None:
    with trio.fail_after(_TIMEOUT_S):
        stream = await trio.open_tcp_stream("127.0.0.1", server.ws_port)
        async with stream:
            await stream.send_all(b"GET /ws HTTP/1.1\r\n")
            started = trio.current_time()
            assert await stream.receive_some(1024) == b""
            assert trio.current_time() - started >= 0.25


async def test_a_reader_slower_than_the_sender_gets_every_frame_whole_and_in_order(
    api: Api, connect: Connect
) -> None:
    # 100 x 16 KB is far more than the kernel holds for an unread socket, so
    # the writer has to wait for the socket to become writable, many times.
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    sender = await connect(alice.token)
    slow = await connect(bob.token)
    text = "y" * 16_000
    async with trio.open_nursery() as nursery:

        async def send_all() -> None:
            for index in range(100):
                send = Send(
                    rid=sender.rid(), cid=cid, cmid=f"m{index}", kind=1, body={"text": text}
                )
                assert ok_body(await sender.request(send))["seq"] == index + 1

        nursery.start_soon(send_all)
        await trio.sleep(0.5)  # not reading yet
        seen = []
        with trio.fail_after(20):
            while len(seen) < 100:
                frame = await slow.push()
                assert isinstance(frame, Msg)
                assert frame.body == {"text": text}
                seen.append(frame.seq)
    assert seen == list(range(1, 101))


async def test_pipelined_requests_get_every_reply_in_order(server: Server, api: Api) -> None:
    alice = await api.account()
    # One TCP write holding 50 frames: the server reads them at once and its
    # replies leave coalesced; every one must still be there, in order.
    client = WSConnection(ConnectionType.CLIENT)
    with trio.fail_after(_TIMEOUT_S):
        stream = await trio.open_tcp_stream("127.0.0.1", server.ws_port)
        async with stream:
            await stream.send_all(client.send(Request(host="x", target="/ws")))
            pending: list[object] = []
            while not any(isinstance(e, AcceptConnection) for e in pending):
                client.receive_data(await stream.receive_some(65536))
                pending.extend(client.events())
            frames = [Hello(rid=1, token=alice.token, device="pipe", platform="test")]
            frames += [Ping(rid=rid) for rid in range(2, 52)]
            await stream.send_all(
                b"".join(client.send(BytesMessage(data=encode(f))) for f in frames)
            )
            rids: list[int] = []
            while len(rids) < 51:
                client.receive_data(await stream.receive_some(65536))
                for event in client.events():
                    assert isinstance(event, BytesMessage), event
                    reply = decode_server(bytes(event.data))
                    assert isinstance(reply, Ok), reply
                    rids.append(reply.rid)
    assert rids == list(range(1, 52))


async def test_a_client_ping_gets_a_pong(api: Api, connect: Connect) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    with trio.fail_after(_TIMEOUT_S):
        await conn.ws.ping(b"are you there")
    assert isinstance(await conn.request(Ping(rid=conn.rid())), Ok)


async def test_a_client_closing_gets_the_close_answered_at_once(api: Api, connect: Connect) -> None:
    alice = await api.account()
    conn = await connect(alice.token)
    with trio.fail_after(1):
        await conn.ws.aclose(1000, "bye")
    assert conn.ws.closed is not None


async def test_a_client_that_vanishes_is_forgotten(
    server: Server, api: Api, connect: Connect
) -> None:
    alice = await api.account()
    gone = await connect(alice.token)
    await gone.ws._close_stream()  # the TCP connection drops, no close frame
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
        for _ in range(100):
            if "\nsandcat_connections 0\n" in (await http.get("/metrics")).text:
                break
            await trio.sleep(0.05)
        else:
            pytest.fail("the server still counts a connection whose socket is gone")
    await _still_serves(connect, api)


async def test_a_bug_below_the_session_drops_only_that_socket(
    api: Api, connect: Connect, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await api.account()
    control = await connect(alice.token, device="control")

    async def broken(self: Connection) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Connection, "run", broken)
    victim = await connect()
    assert await victim.close_code() in (-1, 1006)
    assert "WebSocket connection failed" in caplog.text
    assert isinstance(await control.request(Ping(rid=control.rid())), Ok)


@pytest.mark.parametrize(
    ("bad_frame", "code"),
    [
        pytest.param(b"\x82\x02hi", 1002, id="unmasked"),
        pytest.param(b"\xc2\x80\x00\x00\x00\x00", 1002, id="rsv1"),
        pytest.param(b"\x81\x81\x00\x00\x00\x00\xff", 1007, id="text-not-utf8"),
        pytest.param(b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"\0" * 4, 1009, id="too-big"),
    ],
)
async def test_a_frame_breaking_rfc_6455_closes_after_the_requests_before_it_are_answered(
    server: Server, api: Api, connect: Connect, bad_frame: bytes, code: int
) -> None:
    alice = await api.account()
    hello = Hello(rid=1, token=alice.token, device="hostile", platform="t")
    client = FrameProtocol(client=True, extensions=[])
    async with await Deaf.open(server.ws_port) as hostile:
        # The HELLO and the broken frame in one write: the HELLO is still served.
        await hostile.send_raw(bytes(client.send_data(encode(hello))) + bad_frame)
        reply = await hostile._next_event()
        assert isinstance(reply, BytesMessage), reply
        assert isinstance(decode_server(bytes(reply.data)), Ok)
        assert await hostile.close_code() == code
        await hostile.finish_close()
    await _still_serves(connect, api)
