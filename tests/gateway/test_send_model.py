"""A model-based test of the send path (Hypothesis state machine), on both engines.

Two friends, Ann (two devices) and Bob (one), in their direct conversation.
The machine sends, resends, drops Ann's sending connection (also right after
a SEND left, before its reply), reconnects, pulls, syncs, recalls, edits,
hides and reads against a real server over real sockets, and after every
step compares what the server says with a small in-memory model of what
every device must see: the seq of each cmid (a resend gets the original's),
the head, and each device's PULL (bodies, tombstones, edits, hidden seqs).

Hypothesis state machines are synchronous: the server and the connections
live on a Trio loop in a thread of their own (``Loop``), and each step runs
its requests there with ``trio.from_thread.run``. CI runs ``MAX_EXAMPLES``
examples per engine; ``nox -s faults`` runs 200 (``SANDCAT_FAULT_SIZE=full``).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from trio_websocket import WebSocketConnection, connect_websocket_url

from sandcat.app import Server, run_server
from sandcat.protocol import (
    Edit,
    Err,
    Hello,
    Hide,
    Ok,
    Pull,
    Read,
    Recall,
    Send,
    Sync,
    decode_server,
    encode,
)
from tests.passwords import FAST_PASSWORDS
from tests.scene import make_config

T = TypeVar("T")

MAX_EXAMPLES = 200 if os.environ.get("SANDCAT_FAULT_SIZE") == "full" else 25
TIMEOUT_S = 10.0
_names = itertools.count(1)
#: Texts a SEND may carry (no U+0000, no lone surrogates: those are bad_request).
TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=20
)


class Loop:
    """A Trio loop on a thread, running one server until ``close``."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self.nursery: trio.Nursery | None = None
        self.server: Server | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the server did not start")

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.server = await nursery.start(
                lambda task_status: run_server(
                    self._config, passwords=FAST_PASSWORDS, task_status=task_status
                )
            )
            self._ready.set()
            await self._stop.wait()
            self.server.shutdown()

    def run(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def close(self) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)


class Link:
    """One device's connection; request/response only (pushes are set aside)."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.rids = itertools.count(1)

    async def request(self, frame: Any) -> Ok | Err:
        with trio.fail_after(TIMEOUT_S):
            await self.ws.send_message(encode(frame))
            while True:
                reply = decode_server(bytes(await self.ws.get_message()))  # type: ignore[arg-type]
                if isinstance(reply, Ok | Err) and reply.rid == frame.rid:
                    return reply

    async def close(self) -> None:
        with trio.move_on_after(TIMEOUT_S) as cleanup:
            cleanup.shield = True
            await self.ws.aclose()
            await self.ws._close_stream()


@dataclass
class Entry:
    sender: str
    kind: int
    body: object
    cmid: str
    recalled: bool = False


@dataclass
class Model:
    entries: dict[int, Entry] = field(default_factory=dict)
    by_cmid: dict[str, int] = field(default_factory=dict)
    hidden: dict[str, set[int]] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)

    @property
    def head(self) -> int:
        return len(self.entries)

    def append(self, sender: str, kind: int, body: object, cmid: str) -> int:
        seq = self.head + 1
        self.entries[seq] = Entry(sender, kind, body, cmid)
        self.by_cmid[cmid] = seq
        return seq

    def view(self, user: str) -> list[tuple[int, str, int, object, bool]]:
        """What a PULL from 0 must return to ``user``: (seq, from, kind, body, recalled)."""
        hidden = self.hidden.get(user, set())
        return [
            (seq, e.sender, e.kind, None if e.recalled else e.body, e.recalled)
            for seq, e in sorted(self.entries.items())
            if seq not in hidden
        ]


class SendPath(RuleBasedStateMachine):
    """See the module docstring. ``loop`` is set by the test before it runs."""

    loop: Loop

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.cmids = itertools.count(1)
        self.links: dict[str, Link | None] = {}
        #: A SEND whose connection dropped before its reply: stored or not.
        self.unknown: list[tuple[str, str]] = []

    # Set-up ------------------------------------------------------------------

    @initialize()
    def accounts(self) -> None:
        server = self.loop.server
        assert server is not None
        self.ws_url = f"ws://127.0.0.1:{server.ws_port}/ws"
        base = f"http://127.0.0.1:{server.http_port}"
        with httpx.Client(base_url=base, timeout=TIMEOUT_S) as http:
            ids, tokens = {}, {}
            names = {"ann": f"ann{next(_names)}", "bob": f"bob{next(_names)}"}
            for who, name in names.items():
                reply = http.post(
                    "/api/v1/auth/register", json={"username": name, "password": "correct horse 1"}
                )
                assert reply.status_code == 201, reply.text
                ids[who] = str(reply.json()["user"]["id"])
            for device, who in (("ann1", "ann"), ("ann2", "ann"), ("bob1", "bob")):
                reply = http.post(
                    "/api/v1/auth/login",
                    json={
                        "login": names[who],
                        "password": "correct horse 1",
                        "device": device,
                        "platform": "t",
                    },
                )
                assert reply.status_code == 200, reply.text
                tokens[device] = str(reply.json()["access_token"])
            auth = {"Authorization": f"Bearer {tokens['ann1']}"}
            reply = http.post("/api/v1/friends/requests", json={"to": ids["bob"]}, headers=auth)
            assert reply.status_code == 201, reply.text
            request = reply.json()["request"]["id"]
            reply = http.post(
                f"/api/v1/friends/requests/{request}/accept",
                json={},
                headers={"Authorization": f"Bearer {tokens['bob1']}"},
            )
            assert reply.status_code == 200, reply.text
        self.ids, self.tokens = ids, tokens
        low, high = sorted(ids.values())
        self.cid = f"d:{low}:{high}"
        for device in tokens:
            self._connect(device)

    def teardown(self) -> None:
        for device, link in self.links.items():
            if link is not None:
                self.loop.run(link.close)
            self.links[device] = None

    # Helpers -----------------------------------------------------------------

    def _connect(self, device: str) -> None:
        async def open_link() -> Link:
            assert self.loop.nursery is not None
            with trio.fail_after(TIMEOUT_S):
                ws = await connect_websocket_url(
                    self.loop.nursery, self.ws_url, subprotocols=["sandcat.v1"]
                )
            link = Link(ws)
            reply = await link.request(
                Hello(rid=next(link.rids), token=self.tokens[device], device=device, platform="t")
            )
            assert isinstance(reply, Ok), reply
            return link

        self.links[device] = self.loop.run(open_link)

    def _request(self, device: str, make: Callable[[int], Any]) -> Ok | Err:
        link = self.links[device]
        assert link is not None
        return self.loop.run(link.request, make(next(link.rids)))

    def _user(self, device: str) -> str:
        return "ann" if device.startswith("ann") else "bob"

    def _texts_by(self, who: str) -> list[int]:
        return [
            seq
            for seq, e in self.model.entries.items()
            if e.sender == who and e.kind == 1 and not e.recalled
        ]

    # Rules -------------------------------------------------------------------

    @precondition(lambda self: self.links.get("ann1") is not None)
    @rule(text=TEXT)
    def send(self, text: str) -> None:
        cmid = f"c{next(self.cmids)}"
        body = {"text": text}
        reply = self._request(
            "ann1", lambda rid: Send(rid=rid, cid=self.cid, cmid=cmid, kind=1, body=body)
        )
        assert isinstance(reply, Ok), reply
        seq = self.model.append("ann", 1, body, cmid)
        assert reply.body["seq"] == seq

    @precondition(lambda self: self.links.get("ann1") is not None and self.model.by_cmid)
    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        cmid = data.draw(st.sampled_from(sorted(self.model.by_cmid)))
        entry = self.model.entries[self.model.by_cmid[cmid]]
        if entry.kind != 1:
            return
        reply = self._request(
            "ann1",
            lambda rid: Send(rid=rid, cid=self.cid, cmid=cmid, kind=1, body=entry.body),
        )
        assert isinstance(reply, Ok), reply
        assert reply.body["seq"] == self.model.by_cmid[cmid], "a resend got a new seq"

    @precondition(lambda self: self.links.get("ann1") is not None)
    @rule(text=TEXT)
    def send_then_drop(self, text: str) -> None:
        """SEND, then close the connection without reading the reply."""
        link = self.links["ann1"]
        assert link is not None
        cmid = f"c{next(self.cmids)}"

        async def fire() -> None:
            frame = Send(rid=next(link.rids), cid=self.cid, cmid=cmid, kind=1, body={"text": text})
            await link.ws.send_message(encode(frame))
            await link.close()

        self.loop.run(fire)
        self.links["ann1"] = None
        self.unknown.append((cmid, text))

    @precondition(lambda self: self.links.get("ann1") is not None)
    @rule()
    def drop(self) -> None:
        link = self.links["ann1"]
        assert link is not None
        self.loop.run(link.close)
        self.links["ann1"] = None

    @precondition(lambda self: self.links.get("ann1") is None)
    @rule()
    def reconnect(self) -> None:
        """Reconnect and resend every send whose reply was lost: each gets one seq,
        the one it was stored at if it was (the server may still be committing it)."""
        self._connect("ann1")
        for cmid, text in self.unknown:
            body = {"text": text}
            frame = partial(Send, cid=self.cid, cmid=cmid, kind=1, body=body)
            reply = self._request("ann1", lambda rid, frame=frame: frame(rid=rid))
            assert isinstance(reply, Ok), reply
            seq = int(reply.body["seq"])
            if seq == self.model.head + 1:
                self.model.append("ann", 1, body, cmid)
            else:
                raise AssertionError(f"resend of {cmid} got seq {seq}, head {self.model.head}")
        self.unknown.clear()

    @precondition(lambda self: self.links.get("ann1") is not None)
    @rule(device=st.sampled_from(["ann1", "ann2", "bob1"]))
    def pull(self, device: str) -> None:
        if device == "ann1" and self.unknown:
            return  # the head is not known until the lost sends are resent
        if self.unknown:
            return
        reply = self._request(device, lambda rid: Pull(rid=rid, cid=self.cid, after=0, limit=200))
        assert isinstance(reply, Ok), reply
        role = {user: who for who, user in self.ids.items()}
        got = [
            (
                int(m["seq"]),
                role[str(m["from"])],
                int(m["kind"]),
                m.get("body"),
                bool(m.get("recalled")),
            )
            for m in reply.body["msgs"]  # type: ignore[union-attr]
        ]
        assert got == self.model.view(self._user(device))
        assert reply.body["max_seq"] == self.model.head

    @precondition(lambda self: not self.unknown)
    @rule(device=st.sampled_from(["ann2", "bob1"]))
    def sync(self, device: str) -> None:
        reply = self._request(device, lambda rid: Sync(rid=rid))
        assert isinstance(reply, Ok), reply
        convs = {str(c["cid"]): c for c in reply.body["convs"]}  # type: ignore[union-attr]
        if self.model.head == 0:
            return
        conv = convs[self.cid]
        assert conv["max_seq"] == self.model.head
        if device == "bob1":
            assert conv["read_seq"] == self.model.read.get("bob", 0)

    @precondition(lambda self: self.links.get("ann1") is not None and not self.unknown)
    @rule(data=st.data())
    def recall(self, data: st.DataObject) -> None:
        targets = self._texts_by("ann")
        if not targets:
            return
        target = data.draw(st.sampled_from(targets))
        cmid = f"c{next(self.cmids)}"
        reply = self._request(
            "ann1", lambda rid: Recall(rid=rid, cid=self.cid, cmid=cmid, seq=target)
        )
        assert isinstance(reply, Ok), reply
        self.model.entries[target].recalled = True
        assert reply.body["seq"] == self.model.append("ann", 11, {"seq": target}, cmid)

    @precondition(lambda self: self.links.get("ann1") is not None and not self.unknown)
    @rule(data=st.data(), text=TEXT)
    def edit(self, data: st.DataObject, text: str) -> None:
        targets = self._texts_by("ann")
        if not targets:
            return
        target = data.draw(st.sampled_from(targets))
        cmid = f"c{next(self.cmids)}"
        body = {"text": text}
        reply = self._request(
            "ann1", lambda rid: Edit(rid=rid, cid=self.cid, cmid=cmid, seq=target, body=body)
        )
        assert isinstance(reply, Ok), reply
        self.model.entries[target].body = body
        event = self.model.append("ann", 12, {"seq": target, "body": body}, cmid)
        assert reply.body["seq"] == event

    @precondition(lambda self: self.model.head > 0 and not self.unknown)
    @rule(data=st.data(), device=st.sampled_from(["ann2", "bob1"]))
    def hide(self, data: st.DataObject, device: str) -> None:
        seq = data.draw(st.integers(1, self.model.head))
        reply = self._request(device, lambda rid: Hide(rid=rid, cid=self.cid, seqs=(seq,)))
        assert isinstance(reply, Ok), reply
        self.model.hidden.setdefault(self._user(device), set()).add(seq)

    @precondition(lambda self: self.model.head > 0 and not self.unknown)
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        seq = data.draw(st.integers(1, self.model.head))
        reply = self._request("bob1", lambda rid: Read(rid=rid, cid=self.cid, seq=seq))
        assert isinstance(reply, Ok), reply
        self.model.read["bob"] = max(self.model.read.get("bob", 0), seq)

    @invariant()
    def seqs_are_contiguous(self) -> None:
        assert sorted(self.model.entries) == list(range(1, self.model.head + 1))


@pytest.fixture(params=["sqlite", "postgres"])
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    # Every example registers two users and logs three devices in from one address.
    overrides: dict[str, object] = {
        "auth.registrations_per_ip": 1_000_000,
        "auth.login_failures_per_ip": 1_000_000,
        "chat.friend_requests_per_ip": 1_000_000,
    }
    if request.param == "postgres":
        overrides["backends.database_url"] = request.getfixturevalue("postgres_url")
    running = Loop(make_config(tmp_path / "data", **overrides))
    yield running
    running.close()


def test_the_send_path_matches_the_model(loop: Loop) -> None:
    SendPath.loop = loop
    runner = SendPath.TestCase
    runner.settings = settings(
        max_examples=MAX_EXAMPLES,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()
