"""The whole send path over a real SQLite store: acks, fan-out, failures, drain."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import pytest
import trio

from sandcat.config import Config, load_config
from sandcat.errors import Unavailable
from sandcat.pipeline import Pipeline, SendRequest, run_pipeline
from sandcat.pipeline.router import RETRY_AFTER_MS
from sandcat.protocol import Err, ErrorCode, Msg, Ok, decode_server
from sandcat.store.messages import Appended, NewMessage, Refused
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.append import message_store
from sandcat.store.sqlite.dialect import DIALECT

NOW = 1_700_000_000_000
GROUP = "g:team"
AB = "d:a:b"


@dataclass(eq=False)
class Outlet:
    user: str
    device: str
    pushed: list[bytes] = field(default_factory=list)
    _pushed_more: trio.Event = field(default_factory=trio.Event)

    def push(self, data: bytes) -> None:
        self.pushed.append(data)
        self._pushed_more.set()
        self._pushed_more = trio.Event()

    async def wait_for(self, frames: int) -> None:
        while len(self.pushed) < frames:
            await self._pushed_more.wait()

    def frames(self) -> list[object]:
        return [decode_server(data) for data in self.pushed]


class Directory:
    def __init__(self) -> None:
        self.by_user: dict[str, list[Outlet]] = {}

    def connect(self, user: str, device: str) -> Outlet:
        outlet = Outlet(user, device)
        self.by_user.setdefault(user, []).append(outlet)
        return outlet

    def outlets(self, user: str) -> Iterable[Outlet]:
        return self.by_user.get(user, [])


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite", synchronous="NORMAL") as database:

        def scene(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO users (id, username, username_key, password_hash, display_name, "
                "created_at, updated_at) VALUES (?, ?, ?, 'h', ?, 1, 1)",
                [(u, u, u, u) for u in ("a", "b", "c", "e")],
            )
            open_conversation(
                Tx(conn, DIALECT), cid=AB, kind="direct", members=("a", "b"), now_ms=1
            )
            open_conversation(
                Tx(conn, DIALECT), cid=GROUP, kind="group", members=("a", "b", "c"), now_ms=1
            )

        await database.write(scene)
        yield database


def settings(**overrides: object) -> Config:
    return load_config(overrides={f"pipeline.{key}": value for key, value in overrides.items()})


def send(origin: Outlet, cid: str, cmid: str, rid: int, text: str = "hi") -> SendRequest:
    body = {"text": text}
    return SendRequest(
        message=NewMessage(
            sender=origin.user,
            device=origin.device,
            cid=cid,
            cmid=cmid,
            kind=1,
            body=msgpack.packb(body),
        ),
        body=body,
        origin=origin,
        rid=rid,
    )


async def stored(db: Database) -> list[tuple[str, int, str]]:
    return await db.read(
        lambda conn: conn.execute(
            "SELECT cid, seq, cmid FROM messages ORDER BY cid, seq"
        ).fetchall()
    )


async def start(
    nursery: trio.Nursery, db: Database, directory: Directory, config: Config | None = None
) -> Pipeline:
    pipeline: Pipeline = await nursery.start(
        run_pipeline, message_store(db), directory, config or settings(), lambda: NOW
    )
    return pipeline


async def test_acks_come_back_in_order_with_contiguous_seqs(db: Database) -> None:
    directory = Directory()
    a = directory.connect("a", "phone")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory)
            for rid in range(1, 21):
                await pipeline.submit(send(a, AB if rid % 2 else GROUP, f"m{rid}", rid))
            await pipeline.aclose()
            await pipeline.drained.wait()
    acks = a.frames()
    assert [frame.rid for frame in acks] == list(range(1, 21))  # type: ignore[attr-defined]
    assert all(isinstance(frame, Ok) for frame in acks)
    direct = [f.body["seq"] for f in acks if isinstance(f, Ok) and f.body["cid"] == AB]
    group = [f.body["seq"] for f in acks if isinstance(f, Ok) and f.body["cid"] == GROUP]
    assert direct == list(range(1, 11))
    assert group == list(range(1, 11))
    assert len(await stored(db)) == 20


async def test_a_message_is_encoded_once_for_every_recipient(db: Database) -> None:
    directory = Directory()
    origin = directory.connect("a", "phone")
    laptop = directory.connect("a", "laptop")
    b1, b2 = directory.connect("b", "phone"), directory.connect("b", "tablet")
    c = directory.connect("c", "phone")
    stranger = directory.connect("e", "phone")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory)
            await pipeline.submit(send(origin, GROUP, "m1", rid=5))
            await pipeline.aclose()
            await pipeline.drained.wait()

    [ack] = origin.frames()  # the sender's own connection gets the ack only
    assert isinstance(ack, Ok)
    assert (ack.rid, ack.body["cid"], ack.body["seq"], ack.body["ts"]) == (5, GROUP, 1, NOW)
    [plain] = b1.pushed
    assert b2.pushed[0] is plain
    assert c.pushed[0] is plain
    assert len(b2.pushed) == len(c.pushed) == 1
    assert stranger.pushed == []
    msg = decode_server(plain)
    assert isinstance(msg, Msg)
    assert (msg.cid, msg.seq, msg.mid, msg.sender, msg.body) == (
        GROUP,
        1,
        ack.body["mid"],
        "a",
        {"text": "hi"},
    )
    assert (msg.cmid, msg.device) == (None, None)
    # The sender's other devices learn which of their sends it was.
    [own] = laptop.frames()
    assert isinstance(own, Msg)
    assert (own.cmid, own.device, own.seq, own.mid) == ("m1", "phone", 1, msg.mid)


async def test_refused_and_duplicate_sends(db: Database) -> None:
    directory = Directory()
    a = directory.connect("a", "phone")
    b = directory.connect("b", "phone")
    e = directory.connect("e", "phone")
    # No fast path: the resend goes to the store, which answers it (G2).
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory, settings(recent_acks=0))
            await pipeline.submit(send(a, AB, "m1", rid=1))
            await pipeline.submit(send(e, AB, "x", rid=1))
            await a.wait_for(1)
            await pipeline.submit(send(a, AB, "m1", rid=2, text="changed"))
            await pipeline.submit(send(a, AB, "m2", rid=3))
            await pipeline.aclose()
            await pipeline.drained.wait()
    first, again, second = a.frames()
    assert isinstance(first, Ok)
    assert isinstance(again, Ok)
    assert isinstance(second, Ok)
    assert again.rid == 2
    assert again.body == first.body
    assert second.body["seq"] == 2  # the refused send took no seq
    [refusal] = e.frames()
    assert isinstance(refusal, Err)
    assert (refusal.rid, refusal.code) == (1, ErrorCode.FORBIDDEN)
    # The duplicate was not pushed again.
    assert [f.seq for f in b.frames() if isinstance(f, Msg)] == [1, 2]
    assert await stored(db) == [(AB, 1, "m1"), (AB, 2, "m2")]


async def test_a_recent_resend_is_answered_from_memory(db: Database) -> None:
    directory = Directory()
    a = directory.connect("a", "phone")
    b = directory.connect("b", "phone")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory)
            await pipeline.submit(send(a, AB, "m1", rid=1))
            await a.wait_for(1)
            await pipeline.submit(send(a, AB, "m1", rid=2))
            await pipeline.aclose()
            await pipeline.drained.wait()
    first, again = a.frames()
    assert isinstance(first, Ok)
    assert isinstance(again, Ok)
    assert (again.rid, again.body) == (2, first.body)
    assert len(b.pushed) == 1


async def test_a_store_failure_fails_the_whole_batch_and_stores_nothing(db: Database) -> None:
    """A real disk-full error: the last send of the batch cannot be written."""

    def cap(conn: sqlite3.Connection) -> int:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return int(pages)

    directory = Directory()
    a = directory.connect("a", "phone")
    b = directory.connect("b", "phone")
    c = directory.connect("c", "phone")
    # A wide window so the three sends surely form one batch.
    config = settings(batch_window_ms=300)
    with trio.fail_after(10):
        pages = await db.write(cap)
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory, config)
            await pipeline.submit(send(a, AB, "m1", rid=1))
            await pipeline.submit(send(c, GROUP, "m1", rid=1))
            await pipeline.submit(send(a, GROUP, "big", rid=2, text="x" * 300_000))
            await a.wait_for(2)
            await c.wait_for(1)
            for outlet, rids in ((a, [1, 2]), (c, [1])):
                errors = outlet.frames()
                assert [e.rid for e in errors] == rids  # type: ignore[attr-defined]
                for error in errors:
                    assert isinstance(error, Err)
                    assert error.code == ErrorCode.UNAVAILABLE
                    assert error.retry_after_ms == RETRY_AFTER_MS
            assert b.pushed == []
            assert await stored(db) == []
            # The disk has room again: the resends take the seqs the failed batch did not.
            await db.write(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages * 1000}"))
            await pipeline.submit(send(a, AB, "m1", rid=3))
            await a.wait_for(3)
            await pipeline.aclose()
            await pipeline.drained.wait()
    ack = a.frames()[-1]
    assert isinstance(ack, Ok)
    assert (ack.rid, ack.body["seq"]) == (3, 1)
    assert await stored(db) == [(AB, 1, "m1")]


async def test_a_closed_database_fails_sends_with_a_retryable_error(
    db: Database, tmp_path: Path
) -> None:
    directory = Directory()
    a = directory.connect("a", "phone")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory)
            await db.aclose()
            await pipeline.submit(send(a, AB, "m1", rid=1))
            await pipeline.submit(send(a, GROUP, "m2", rid=2))
            await pipeline.aclose()
            await pipeline.drained.wait()
    errors = a.frames()
    assert [e.rid for e in errors] == [1, 2]  # type: ignore[attr-defined]
    assert all(isinstance(e, Err) and e.code == ErrorCode.UNAVAILABLE for e in errors)
    assert all(isinstance(e, Err) and e.retry_after_ms == RETRY_AFTER_MS for e in errors)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)
    finally:
        conn.close()


async def test_closing_drains_queued_sends_then_refuses_new_ones(db: Database) -> None:
    directory = Directory()
    a = directory.connect("a", "phone")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory)
            for rid in range(1, 6):
                await pipeline.submit(send(a, AB, f"m{rid}", rid))
            await pipeline.aclose()
            await pipeline.aclose()  # idempotent
            with pytest.raises(Unavailable):
                await pipeline.submit(send(a, AB, "late", rid=9))
            await pipeline.drained.wait()
        assert pipeline.drained.is_set()
    assert [f.rid for f in a.frames()] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert len(await stored(db)) == 5


def written(sender: str, cid: str, cmid: str) -> tuple[NewMessage, dict[str, object]]:
    """A message a server part writes (``Pipeline.commit``), from a device no socket has."""
    body: dict[str, object] = {"text": "logged"}
    return NewMessage(
        sender=sender, device="server", cid=cid, cmid=cmid, kind=1, body=msgpack.packb(body)
    ), body


async def test_commit_returns_what_was_appended_and_pushes_it_to_every_device(
    db: Database,
) -> None:
    directory = Directory()
    a, b = directory.connect("a", "phone"), directory.connect("b", "phone")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, directory)
            outcome = await pipeline.commit(*written("a", AB, "log-1"))
            again = await pipeline.commit(*written("a", AB, "log-1"))
            await pipeline.aclose()
    assert isinstance(outcome, Appended)
    assert (outcome.message.seq, outcome.duplicate) == (1, False)
    assert isinstance(again, Appended)
    assert again.duplicate
    assert again.message.mid == outcome.message.mid
    # Every device of both members gets the MSG (the writer has no socket to ack).
    [own], [plain] = a.frames(), b.frames()
    assert isinstance(own, Msg)
    assert own.cmid == "log-1"
    assert isinstance(plain, Msg)
    assert plain.seq == 1
    assert await stored(db) == [(AB, 1, "log-1")]


async def test_commit_returns_a_refusal_and_stores_nothing(db: Database) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, Directory())
            outcome = await pipeline.commit(*written("e", AB, "log-1"))  # not a member
            await pipeline.aclose()
    assert isinstance(outcome, Refused)
    assert outcome.code == "forbidden"
    assert await stored(db) == []


async def test_commit_is_refused_unavailable_when_the_store_fails_or_the_pipeline_closed(
    db: Database,
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            pipeline = await start(nursery, db, Directory())
            await db.aclose()
            failed = await pipeline.commit(*written("a", AB, "log-1"))
            await pipeline.aclose()
            closed = await pipeline.commit(*written("a", AB, "log-2"))
    assert isinstance(failed, Refused)
    assert failed.code == "unavailable"
    assert "nothing was stored" in failed.message
    assert isinstance(closed, Refused)
    assert closed.code == "unavailable"
    assert "shutting down" in closed.message
