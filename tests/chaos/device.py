"""A chaos client: one device that records everything it does and sees into a History.

It speaks raw frames (not the SDK, whose dedupe would hide what the server
really sent): every push, every PULL result and every ack goes to the
history before any dedupe. Behaviour is that of a careful client:

- it connects to its home instance and, when the link drops, to the next
  one in the list (round robin), after a short pause;
- on every (re)connect it SYNCs, then PULLs the holes of each of its
  conversations (G4); it also SYNCs every ``sync_interval_s``, which is how it
  notices messages whose push never came (a lost bus event, a dead gateway);
- a push past a hole wakes the filler, which PULLs from the first hole;
- after a GOAWAY it sends nothing new on that link and moves on once the
  server closes it;
- a send is retried with the same cmid after a lost link, a timeout or a
  retryable ERR, until acked or definitely refused (G2).

Every await on the network has a deadline (``CALL_TIMEOUT_S``).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from sandcat.client import Credentials
from sandcat.client.http import Tokens
from sandcat.protocol import (
    Auth,
    Err,
    ErrorCode,
    GoAway,
    Hello,
    Msg,
    Ok,
    Pull,
    Read,
    ReadState,
    Send,
    Sync,
    decode_server,
    encode,
)
from tests.chaos.history import DEFINITE_FAILURES, History
from tests.chaos.tokens import TokenUnavailable

CALL_TIMEOUT_S = 5.0
_RETRY_S = 0.25
#: At most one AUTH per this many seconds, even when the renewal is overdue.
_AUTH_INTERVAL_S = 2.0


class LinkLost(Exception):
    """The connection closed (or never opened) before the reply came."""


class _Link:
    def __init__(
        self, ws: WebSocketConnection, name: str, on_push: Callable[[_Link, Msg | ReadState], None]
    ) -> None:
        self.ws = ws
        self.name = name
        self._rids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Ok | Err]] = {}
        self._on_push = on_push
        self.closed = trio.Event()
        self.going_away = False
        #: Which of its device's connections this is (set once HELLO is answered).
        self.serial = 0

    def rid(self) -> int:
        return next(self._rids)

    async def read(self) -> None:
        try:
            while True:
                data = await self.ws.get_message()
                frame = decode_server(bytes(data))  # type: ignore[arg-type]
                if isinstance(frame, Ok | Err):
                    waiter = self._waiting.pop(frame.rid, None)
                    if waiter is not None:
                        waiter.send_nowait(frame)
                elif isinstance(frame, Msg | ReadState):
                    self._on_push(self, frame)
                elif isinstance(frame, GoAway):
                    # No new requests here; the server closes once it has drained.
                    self.going_away = True
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for waiter in self._waiting.values():
                waiter.close()
            self._waiting.clear()

    async def call(self, frame: Send | Pull | Sync | Hello | Read | Auth) -> Ok | Err:
        if self.closed.is_set():
            raise LinkLost("closed")
        send, receive = trio.open_memory_channel[Ok | Err](1)
        self._waiting[frame.rid] = send
        try:
            with trio.fail_after(CALL_TIMEOUT_S):
                await self.ws.send_message(encode(frame))
                return await receive.receive()
        except (ConnectionClosed, trio.EndOfChannel, trio.BrokenResourceError) as exc:
            raise LinkLost(type(exc).__name__) from exc
        finally:
            self._waiting.pop(frame.rid, None)


@dataclass
class Device:
    """State that outlives one run (what the device has seen); ``run`` is the live part."""

    user: str
    name: str
    token: str
    urls: list[str]
    home: int
    history: History
    #: A conversation this user is not in: sends there must be refused (I6).
    foreign_cid: str
    seed: int = 0
    sync_interval_s: float = 1.5
    seen: dict[str, set[int]] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    floor: dict[str, int] = field(default_factory=dict)
    through: dict[str, int] = field(default_factory=dict)
    counter: int = 0
    connects: int = 0
    links_opened: int = 0
    #: READ_STATE pushes received: (cid, reader, seq).
    read_states: list[tuple[str, str, int]] = field(default_factory=list)
    link: _Link | None = None
    #: Set for a run longer than a token lives (the soak): renewed before expiry
    #: (AUTH on the live link) and after a refused HELLO; ``token`` otherwise.
    credentials: Credentials | None = None
    #: The login's tokens and username, for ``credentials``.
    tokens: Tokens | None = None
    login: str = ""
    auths: int = 0
    _renew: bool = False
    _wake: trio.Event | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.user, self.name)

    @property
    def conversations(self) -> list[str]:
        return self.history.conversations_of(self.user)

    @property
    def connected(self) -> bool:
        return self.link is not None and not self.link.closed.is_set()

    def _contiguous(self, cid: str) -> int:
        """The highest seq up to which this device has every message (a moving cursor)."""
        have = self.seen.get(cid, set())
        seq = max(self.through.get(cid, 0), self.floor.get(cid, 1) - 1)
        while seq + 1 in have:
            seq += 1
        self.through[cid] = seq
        return seq

    def missing(self, cid: str) -> list[int]:
        have = self.seen.get(cid, set())
        start = self._contiguous(cid) + 1
        return [seq for seq in range(start, self.known.get(cid, 0) + 1) if seq not in have]

    def has_all(self, heads: dict[str, int]) -> bool:
        return all(self._contiguous(cid) >= heads.get(cid, 0) for cid in self.conversations)

    def _note(self, cid: str, seq: int) -> None:
        self.seen.setdefault(cid, set()).add(seq)
        self._saw_head(cid, seq)

    def _saw_head(self, cid: str, head: int) -> None:
        if head > self.known.get(cid, 0):
            self.known[cid] = head
        if self.missing(cid) and self._wake is not None:
            self._wake.set()

    def _on_push(self, link: _Link, msg: Msg | ReadState) -> None:
        if isinstance(msg, ReadState):
            self.read_states.append((msg.cid, msg.user, msg.seq))
            return
        text = msg.body.get("text") if isinstance(msg.body, dict) else None
        self.history.receipt(
            self.key,
            "push",
            msg.cid,
            msg.seq,
            msg.mid,
            msg.sender,
            str(text),
            link.name,
            link.serial,
        )
        self._note(msg.cid, msg.seq)

    async def run(self) -> None:
        """Stay connected (to any instance) and caught up, until cancelled."""
        self._wake = trio.Event()
        attempt = self.home
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fill)
            nursery.start_soon(self._sync_often)
            while True:
                url = self.urls[attempt % len(self.urls)]
                try:
                    await self._connect_and_serve(url, f"i{attempt % len(self.urls)}")
                except* (LinkLost, OSError, HandshakeError, ConnectionClosed, trio.TooSlowError):
                    pass  # the instance is gone or going: try the next one
                self.link = None
                attempt += 1
                await trio.sleep(_RETRY_S)

    async def _connect_and_serve(self, url: str, name: str) -> None:
        port = int(url.split(":")[2].split("/")[0])
        with trio.fail_after(CALL_TIMEOUT_S):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await self._serve(stream, name)
        finally:
            # A handshake that timed out (a half-open link) leaves the socket to us.
            stream.socket.close()

    async def _serve(self, stream: trio.SocketStream, name: str) -> None:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(CALL_TIMEOUT_S):
                ws = await wrap_client_stream(
                    nursery, stream, "127.0.0.1", "/ws", subprotocols=["sandcat.v1"]
                )
            link = _Link(ws, name, self._on_push)
            self.links_opened += 1
            link.serial = self.links_opened
            try:
                nursery.start_soon(link.read)
                token = await self._access_token()
                hello = Hello(rid=link.rid(), token=token, device=self.name, platform="test")
                reply = await link.call(hello)
                if not isinstance(reply, Ok):
                    if reply.code == ErrorCode.UNAUTHORIZED:
                        self._renew = True  # the next attempt renews the token first
                    raise LinkLost(f"hello refused: {reply}")
                self._renew = False
                self.connects += 1
                self.link = link
                if self.credentials is not None:
                    nursery.start_soon(self._keep_authenticated, link)
                await self._sync(link)
                await link.closed.wait()
            finally:
                with trio.move_on_after(1) as cleanup:
                    cleanup.shield = True
                    await ws.aclose()
                    # trio-websocket's client keeps its socket when the server closed first.
                    await ws._close_stream()
                nursery.cancel_scope.cancel()

    async def _access_token(self) -> str:
        if self.credentials is None:
            return self.token
        try:
            # No deadline here: the request is bounded by httpx's timeouts (tokens.py).
            return await self.credentials.access_token(renew=self._renew)
        except TokenUnavailable as exc:
            raise LinkLost(f"no access token: {exc!r}") from exc

    async def _keep_authenticated(self, link: _Link) -> None:
        """Present a fresh access token with AUTH before the current one expires
        (protocol/SPEC.md §5.3); a failed renewal is retried, and if the token
        expires all the same the server closes with 4007 and HELLO renews it."""
        assert self.credentials is not None
        while (renew_at := self.credentials.renew_at) is not None:
            await trio.sleep(max(_AUTH_INTERVAL_S, renew_at - time.time()))
            try:
                token = await self._access_token()
                reply = await link.call(Auth(rid=link.rid(), token=token))
            except LinkLost:
                if link.closed.is_set():
                    return
                continue  # no token now: try again after the interval
            except trio.TooSlowError:
                continue
            if isinstance(reply, Ok):
                self.auths += 1

    async def wait_connected(self, timeout_s: float) -> None:
        with trio.fail_after(timeout_s):
            while not self.connected:  # noqa: ASYNC110 - polling a plain attribute
                await trio.sleep(0.05)

    async def mark_read(self, cid: str, seq: int) -> Ok | Err:
        """READ ``cid`` up to ``seq`` (LinkLost if not connected)."""
        link = self.link
        if link is None:
            raise LinkLost("not connected")
        return await link.call(Read(rid=link.rid(), cid=cid, seq=seq))

    async def _sync(self, link: _Link) -> None:
        invoked = time.monotonic()
        reply = await link.call(Sync(rid=link.rid()))
        if not isinstance(reply, Ok):
            return
        convs = reply.body.get("convs")
        assert isinstance(convs, list)
        mine = set(self.conversations)
        for conv in convs:
            cid = str(conv["cid"])
            if cid not in mine:
                continue
            self.history.head(self.key, cid, int(conv["max_seq"]), invoked)
            self.floor[cid] = int(conv["min_seq"])
            self._saw_head(cid, int(conv["max_seq"]))

    async def _sync_often(self) -> None:
        while True:
            await trio.sleep(self.sync_interval_s)
            link = self.link
            if link is not None:
                with contextlib.suppress(LinkLost, trio.TooSlowError):
                    await self._sync(link)

    async def _fill(self) -> None:
        """PULL from the first hole of each conversation until none is left."""
        while True:
            assert self._wake is not None
            await self._wake.wait()
            self._wake = trio.Event()
            for cid in self.conversations:
                while (link := self.link) is not None and (holes := self.missing(cid)):
                    try:
                        if not await self._pull(link, cid, holes[0] - 1):
                            break
                    except (LinkLost, trio.TooSlowError):
                        break

    async def _pull(self, link: _Link, cid: str, after: int) -> bool:
        invoked = time.monotonic()
        reply = await link.call(Pull(rid=link.rid(), cid=cid, after=after, limit=200))
        if not isinstance(reply, Ok):
            await trio.sleep(_RETRY_S)
            return False
        msgs = reply.body["msgs"]
        assert isinstance(msgs, list)
        for m in msgs:
            body = m.get("body")
            text = body.get("text") if isinstance(body, dict) else None
            self.history.receipt(
                self.key,
                "pull",
                cid,
                int(m["seq"]),
                str(m["mid"]),
                str(m["from"]),
                str(text),
                link.name,
            )
            self.seen.setdefault(cid, set()).add(int(m["seq"]))
        self.history.head(self.key, cid, int(reply.body["max_seq"]), invoked)
        self.floor[cid] = int(reply.body["min_seq"])
        self._saw_head(cid, int(reply.body["max_seq"]))
        return bool(msgs)

    async def send_until_resolved(self, cid: str, give_up: trio.Event, pad: int = 0) -> None:
        """Send one new message (its text ``pad`` bytes longer); resend it with the same
        cmid until acked or refused."""
        self.counter += 1
        cmid = f"{self.name}-{self.counter}"
        content = f"{self.user}/{self.name}#{self.counter}" + "." * pad
        while not give_up.is_set():
            link = self.link
            if link is None or link.closed.is_set() or link.going_away:
                await trio.sleep(0.05)
                continue
            op = self.history.invoke(self.user, self.name, cid, cmid, content, link.name)
            try:
                reply = await link.call(
                    Send(rid=link.rid(), cid=cid, cmid=cmid, kind=1, body={"text": content})
                )
            except (LinkLost, trio.TooSlowError) as exc:
                self.history.info(op, f"{type(exc).__name__}: {exc}")
                await trio.sleep(_RETRY_S)
                continue
            if isinstance(reply, Ok):
                self.history.ok(op, int(reply.body["seq"]), str(reply.body["mid"]))
                self._note(cid, int(reply.body["seq"]))
                return
            self.history.fail(op, reply.code.value)
            if op.code in DEFINITE_FAILURES:
                return
            await trio.sleep(_RETRY_S)

    async def send_load(self, rate_per_s: float, stop: trio.Event, give_up: trio.Event) -> None:
        """New sends at about ``rate_per_s`` (one at a time) until ``stop``; every 20th is
        aimed at a conversation this user is not in."""
        rng = random.Random(self.seed)
        while not stop.is_set():
            await trio.sleep(rng.expovariate(rate_per_s))
            if stop.is_set():
                return
            cid = self.foreign_cid if self.counter % 20 == 19 else rng.choice(self.conversations)
            await self.send_until_resolved(cid, give_up)
