"""FaultProxy: a small Trio TCP proxy a test switches between faults while it runs.

Each ``FaultProxy`` listens on its own loopback port and forwards every
connection it accepts to one upstream port (an instance's PostgreSQL, its
Redis, or an instance's WebSocket listener for a client). The mode applies to
every connection, open or new, from the moment it is set:

- ``pass``: forward both ways.
- ``blackhole``: forward nothing and keep every socket open (bytes wait, as in
  a partition that TCP retransmission would bridge after the heal); new
  connections are accepted and not connected upstream until the heal.
- ``latency(ms, jitter_ms)``: every chunk waits ``ms ± jitter_ms`` (uniform)
  before it is forwarded; order is kept.
- ``bandwidth(bytes_per_s)``: each direction is capped at this rate.
- ``halfopen``: client-to-server bytes pass, server-to-client bytes are
  dropped (the client never hears back; the server believes it is heard).

and two one-shot actions:

- ``reset()``: every open connection is closed with an RST (SO_LINGER 0).
- ``reset_after(n)``: the open connections are reset right after ``n`` more
  client-to-server bytes have been forwarded (``n = 1``: after the next chunk,
  e.g. a SEND frame, has passed).

The proxies run on their own thread with its own Trio loop (``ProxyHost``), so
blocking test code and Trio test code can both drive them: a mode is a plain
attribute the forwarding tasks read, and actions are handed to the loop with
``TrioToken.run_sync_soon``. Every await on the network is bounded by the
mode: a connection upstream gives up after ``CONNECT_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
import traceback
from dataclasses import dataclass

import trio

CONNECT_TIMEOUT_S = 5.0
_CHUNK = 65536
_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class Mode:
    name: str = "pass"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bytes_per_s: float = 0.0


PASS = Mode()
BLACKHOLE = Mode("blackhole")
HALFOPEN = Mode("halfopen")


def latency(ms: float, jitter_ms: float = 0.0) -> Mode:
    return Mode("latency", latency_ms=ms, jitter_ms=jitter_ms)


def bandwidth(bytes_per_s: float) -> Mode:
    return Mode("bandwidth", bytes_per_s=bytes_per_s)


class _Connection:
    def __init__(self, client: trio.SocketStream) -> None:
        self.client = client
        self.upstream: trio.SocketStream | None = None
        self.scope = trio.CancelScope()
        self.reset_after: int | None = None

    def rst(self) -> None:
        """Close both sockets with an RST once the connection's tasks end."""
        for stream in (self.client, self.upstream):
            if stream is not None:
                # A socket already closed has nothing left to reset.
                with contextlib.suppress(OSError):
                    stream.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
        self.scope.cancel()


class FaultProxy:
    """One listening port in front of ``127.0.0.1:upstream_port``."""

    def __init__(self, name: str, upstream_port: int, *, seed: int = 0) -> None:
        self.name = name
        self.upstream_port = upstream_port
        self.mode: Mode = PASS
        self.accepted = 0
        #: When each connection that reached upstream ended (``time.monotonic()``).
        self.closed_at: list[float] = []
        self._rng = random.Random(seed)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(512)
        self.port: int = self._listener.getsockname()[1]
        self._open: set[_Connection] = set()
        self._token: trio.lowlevel.TrioToken | None = None

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def set(self, mode: Mode) -> None:
        self.mode = mode

    def heal(self) -> None:
        self.mode = PASS

    def reset(self) -> None:
        self._soon(self._reset_all)

    def reset_after(self, n: int) -> None:
        def arm() -> None:
            for conn in self._open:
                conn.reset_after = n

        self._soon(arm)

    def _soon(self, fn: object) -> None:
        assert self._token is not None, f"proxy {self.name} is not running"
        self._token.run_sync_soon(fn)  # type: ignore[arg-type]

    def _reset_all(self) -> None:
        for conn in list(self._open):
            conn.rst()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._listener))
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    try:
                        client = await listener.accept()
                    except OSError:  # out of descriptors for a moment: keep listening
                        await trio.sleep(_POLL_S)
                        continue
                    assert isinstance(client, trio.SocketStream)
                    self.accepted += 1
                    nursery.start_soon(self._handle, client)
        finally:
            self.close()

    def close(self) -> None:
        self._listener.close()

    async def _wait_unblocked(self) -> None:
        while self.mode.name == "blackhole":  # noqa: ASYNC110 - another thread sets it
            await trio.sleep(_POLL_S)

    async def _handle(self, client: trio.SocketStream) -> None:
        conn = _Connection(client)
        self._open.add(conn)
        try:
            with conn.scope:
                await self._wait_unblocked()
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    conn.upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, conn, client, conn.upstream, True)
                    nursery.start_soon(self._pump, conn, conn.upstream, client, False)
        except* (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass  # one side went away: the other is closed below, as a real link would be
        finally:
            self._open.discard(conn)
            if conn.upstream is not None:
                self.closed_at.append(time.monotonic())
            for stream in (client, conn.upstream):
                if stream is not None:
                    stream.socket.close()

    async def _pump(
        self, conn: _Connection, src: trio.SocketStream, dst: trio.SocketStream, up: bool
    ) -> None:
        while True:
            data = await src.receive_some(_CHUNK)
            if not data:
                break
            await self._wait_unblocked()
            mode = self.mode
            if mode.name == "halfopen" and not up:
                continue
            if mode.name == "latency":
                low = max(0.0, mode.latency_ms - mode.jitter_ms)
                await trio.sleep(self._rng.uniform(low, mode.latency_ms + mode.jitter_ms) / 1000)
            if mode.name == "bandwidth" and mode.bytes_per_s > 0:
                await trio.sleep(len(data) / mode.bytes_per_s)
            await self._wait_unblocked()
            await dst.send_all(data)
            if up and conn.reset_after is not None:
                conn.reset_after -= len(data)
                if conn.reset_after <= 0:
                    # Give the bytes a moment to leave before the RST overtakes them.
                    await trio.sleep(_POLL_S)
                    conn.rst()
                    return
        # The source closed its side: the other direction may still be flowing.
        await dst.send_eof()


class ProxyHost:
    """Runs proxies on a daemon thread with its own Trio loop until ``stop``."""

    def __init__(self) -> None:
        self.proxies: list[FaultProxy] = []
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._error: BaseException | None = None

    def add(self, name: str, upstream_port: int) -> FaultProxy:
        assert self._thread is None, "add every proxy before start()"
        proxy = FaultProxy(name, upstream_port, seed=len(self.proxies))
        self.proxies.append(proxy)
        return proxy

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fault proxies did not start")
        if self._error is not None:
            raise RuntimeError("the fault proxies failed") from self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            # Reported by ``failure`` (Cluster.dead) and here, with its traceback.
            self._error = exc
            self._started.set()
            traceback.print_exc()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                for proxy in self.proxies:
                    await nursery.start(proxy.serve)
                self._started.set()

    @property
    def failure(self) -> BaseException | None:
        """What stopped the proxies' loop, if anything did (every link is then down)."""
        return self._error

    def heal_all(self) -> None:
        for proxy in self.proxies:
            proxy.heal()

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            cancel = self._cancel
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(cancel.cancel)
        if self._thread is not None:
            self._thread.join(10)
        for proxy in self.proxies:
            proxy.close()
