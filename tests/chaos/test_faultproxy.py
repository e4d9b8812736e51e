"""The fault proxy against a real echo server over real sockets: each mode does what
it says, and healing restores the link."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio

from tests.chaos.faultproxy import BLACKHOLE, HALFOPEN, FaultProxy, ProxyHost, bandwidth, latency


async def _echo(stream: trio.SocketStream) -> None:
    try:
        async with stream:
            async for data in stream:
                await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        host = ProxyHost()
        one = host.add("echo", port)
        await trio.to_thread.run_sync(host.start)
        yield one
        await trio.to_thread.run_sync(host.stop)
        nursery.cancel_scope.cancel()


async def _roundtrip(stream: trio.SocketStream, data: bytes, limit_s: float = 5) -> bytes:
    await stream.send_all(data)
    got = b""
    with trio.fail_after(limit_s):
        while len(got) < len(data):
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            got += chunk
    return got


async def _read_until_reset(stream: trio.SocketStream) -> bool:
    """True once the stream is reset (not merely closed)."""
    try:
        while await stream.receive_some(10):
            pass
    except trio.BrokenResourceError:
        return True
    return False


async def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    assert await _roundtrip(stream, b"hello") == b"hello"
    assert proxy.accepted == 1
    await stream.aclose()


async def test_blackhole_holds_bytes_until_heal(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    proxy.set(BLACKHOLE)
    await stream.send_all(b"held")
    with trio.move_on_after(0.5) as waited:
        await stream.receive_some(10)
    assert waited.cancelled_caught, "a blackholed link answered"
    # A new connection is accepted but goes nowhere either.
    late = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    await late.send_all(b"late")
    proxy.heal()
    with trio.fail_after(5):
        assert await stream.receive_some(10) == b"held"
        assert await late.receive_some(10) == b"late"
    await stream.aclose()
    await late.aclose()


async def test_latency_delays_every_chunk(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    proxy.set(latency(150, 50))
    started = time.monotonic()
    assert await _roundtrip(stream, b"slow") == b"slow"
    # Two hops (there and back), each at least 100 ms.
    assert time.monotonic() - started >= 0.2
    await stream.aclose()


async def test_bandwidth_caps_the_rate(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    proxy.set(bandwidth(20_000))
    started = time.monotonic()
    assert await _roundtrip(stream, b"x" * 10_000, limit_s=10) == b"x" * 10_000
    # 10 kB at 20 kB/s: at least half a second one way.
    assert time.monotonic() - started >= 0.45
    await stream.aclose()


async def test_halfopen_drops_the_replies_only(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    proxy.set(HALFOPEN)
    await stream.send_all(b"unheard")
    with trio.move_on_after(0.5) as waited:
        await stream.receive_some(10)
    assert waited.cancelled_caught
    proxy.heal()
    # The echo of "unheard" was dropped for good; the link works again.
    assert await _roundtrip(stream, b"again") == b"again"
    await stream.aclose()


async def test_reset_closes_open_connections(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    assert await _roundtrip(stream, b"a") == b"a"
    proxy.reset()
    with trio.fail_after(5):
        assert await _read_until_reset(stream)
    with trio.fail_after(5):
        while proxy.open_connections:  # noqa: ASYNC110
            await trio.sleep(0.01)
    await stream.aclose()


async def test_reset_after_lets_the_next_bytes_through_first(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    assert await _roundtrip(stream, b"a") == b"a"
    proxy.reset_after(1)
    await trio.sleep(0.1)
    await stream.send_all(b"last")
    got = b""
    with trio.fail_after(5):
        try:
            while chunk := await stream.receive_some(10):
                got += chunk
        except trio.BrokenResourceError:
            pass
    # The upstream saw the bytes (its echo may or may not beat the RST back).
    assert got in (b"", b"last")
    with trio.fail_after(5):
        while proxy.open_connections:  # noqa: ASYNC110
            await trio.sleep(0.01)
    await stream.aclose()


async def test_a_peer_reset_leaves_the_proxy_serving(proxy: FaultProxy) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    assert await _roundtrip(stream, b"a") == b"a"
    # The client resets its side (SO_LINGER 0, then close): an RST reaches the proxy.
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()
    with trio.fail_after(5):
        while proxy.open_connections:  # noqa: ASYNC110
            await trio.sleep(0.01)
    again = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    assert await _roundtrip(again, b"b") == b"b"
    await again.aclose()
