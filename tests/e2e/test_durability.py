"""G1-G3 across a crash: SIGKILL the server mid-stream, restart it, lose nothing acked.

A real ``sandcat serve`` child process on the default (durable) SQLite settings,
and again on PostgreSQL (synchronous commit).
Senders keep many sends in flight; the server is killed while they are; after
a restart on the same data directory every acked message is there at its
acked seq with its content, seqs are contiguous, a reconnecting client gets
everything back by SYNC and PULL, and resending the unacked sends with their
cmids never duplicates anything.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
import trio
from trio_websocket import ConnectionClosed

from sandcat.protocol import Err, Ok, Pull, Send, Sync
from tests.e2e.process import serve_process
from tests.e2e.wire import Wire, open_wire
from tests.scene import Account, Api

pytestmark = pytest.mark.slow

#: Sends each sender keeps in flight: enough that the kill lands mid-batch.
WINDOW = 32
#: Acks to collect before the kill.
ACKS_BEFORE_KILL = 400


async def _pull_all(wire: Wire, cid: str) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = []
    after = 0
    while True:
        reply = await wire.call(Pull(rid=wire.rid(), cid=cid, after=after, limit=200))
        assert isinstance(reply, Ok), reply
        batch = reply.body["msgs"]
        assert isinstance(batch, list)
        messages.extend(batch)
        if not reply.body["more"]:
            return messages
        after = int(batch[-1]["seq"])


async def _scene(url: str) -> tuple[Account, Account, list[str]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        api = Api(http)
        alice, bob = await api.account("a1"), await api.account("b1")
        direct = await api.befriend(alice, bob)
        group = await api.group(alice, [bob])
    return alice, bob, [direct, group]


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The system of record the server runs on: its SQLite file, or PostgreSQL."""
    if request.param == "postgres":
        return {"SANDCAT_DATABASE_URL": request.getfixturevalue("postgres_url")}
    return {}


async def test_sigkill_mid_stream_loses_nothing_acked(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    acked: dict[str, tuple[str, int, str, str]] = {}  # cmid -> (cid, seq, mid, text)
    attempted: dict[str, tuple[str, str]] = {}  # cmid -> (cid, text)
    with trio.fail_after(120):
        async with serve_process(data_dir, env=database_env) as first:
            alice, bob, cids = await _scene(first.http_url)
            enough = trio.Event()

            async def sender(wire: Wire, cid: str, prefix: str) -> None:
                limiter = trio.Semaphore(WINDOW)

                async def one(n: int) -> None:
                    cmid = f"{prefix}-{n}"
                    text = f"message {n} from {prefix}"
                    attempted[cmid] = (cid, text)
                    try:
                        reply = await wire.call(
                            Send(rid=wire.rid(), cid=cid, cmid=cmid, kind=1, body={"text": text})
                        )
                    except (ConnectionClosed, trio.BrokenResourceError):
                        return
                    finally:
                        limiter.release()
                    assert isinstance(reply, Ok), reply
                    acked[cmid] = (cid, int(reply.body["seq"]), str(reply.body["mid"]), text)
                    if len(acked) >= ACKS_BEFORE_KILL:
                        enough.set()

                async with trio.open_nursery() as sends:
                    for n in range(100_000):
                        await limiter.acquire()
                        if wire.closed is not None:
                            limiter.release()
                            return
                        sends.start_soon(one, n)

            async with (
                open_wire(first.ws_url, alice.token, alice.device) as w1,
                open_wire(first.ws_url, alice.token, "a2") as w2,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(sender, w1, cids[0], "direct")
                nursery.start_soon(sender, w2, cids[1], "group")
                await enough.wait()
                first.kill()
                assert await first.wait() != 0
        in_flight = set(attempted) - set(acked)
        assert len(acked) >= ACKS_BEFORE_KILL
        assert in_flight, "the kill must land while sends are in flight"

        async with serve_process(data_dir, env=database_env) as second:
            async with open_wire(second.ws_url, bob.token, bob.device) as reader:
                reply = await reader.call(Sync(rid=reader.rid()))
                assert isinstance(reply, Ok), reply
                convs = {c["cid"]: c for c in reply.body["convs"]}  # type: ignore[attr-defined]
                assert set(convs) == set(cids)
                logs = {cid: await _pull_all(reader, cid) for cid in cids}
                for cid, log in logs.items():
                    seqs = [int(m["seq"]) for m in log]  # type: ignore[call-overload]
                    assert seqs == list(range(1, len(seqs) + 1)), "seqs must be contiguous"
                    assert convs[cid]["max_seq"] == len(seqs)
                by_seq = {(cid, m["seq"]): m for cid, log in logs.items() for m in log}
                for cmid, (cid, seq, mid, text) in acked.items():
                    stored = by_seq[(cid, seq)]
                    assert (stored["mid"], stored["body"]) == (mid, {"text": text}), cmid

            # The sender resends what it never got an ack for: nothing is duplicated.
            async with open_wire(second.ws_url, alice.token, alice.device) as writer:
                for cmid in sorted(in_flight):
                    cid, text = attempted[cmid]
                    reply = await writer.call(
                        Send(rid=writer.rid(), cid=cid, cmid=cmid, kind=1, body={"text": text})
                    )
                    assert isinstance(reply, Ok), reply
                for cmid, (cid, seq, mid, _) in list(acked.items())[:50]:
                    text = attempted[cmid][1]
                    reply = await writer.call(
                        Send(rid=writer.rid(), cid=cid, cmid=cmid, kind=1, body={"text": text})
                    )
                    assert isinstance(reply, Ok)
                    assert (reply.body["seq"], reply.body["mid"]) == (seq, mid)
                texts: list[object] = []
                for cid in cids:
                    log = await _pull_all(writer, cid)
                    seqs = [int(m["seq"]) for m in log]  # type: ignore[call-overload]
                    assert seqs == list(range(1, len(seqs) + 1))
                    texts.extend(m["body"]["text"] for m in log)  # type: ignore[index]
                assert len(texts) == len(set(texts)) == len(attempted)
        if database_env:
            # The server really ran on PostgreSQL: the log is there, no SQLite file.
            assert not (data_dir / "sandcat.db").exists()
            with psycopg.connect(database_env["SANDCAT_DATABASE_URL"]) as conn:
                row = conn.execute("SELECT count(*) FROM messages").fetchone()
            assert row == (len(attempted),)


async def test_sigterm_drains_acks_in_flight_and_exits_zero(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    with trio.fail_after(60):
        async with serve_process(tmp_path / "data", env=database_env) as server:
            alice, _, cids = await _scene(server.http_url)
            async with open_wire(server.ws_url, alice.token, alice.device) as wire:
                replies: list[Ok | Err] = []
                answered = trio.Event()

                async def one(n: int) -> None:
                    try:
                        send = Send(
                            rid=wire.rid(), cid=cids[0], cmid=f"c{n}", kind=1, body={"text": "x"}
                        )
                        replies.append(await wire.call(send))
                        answered.set()
                    except ConnectionClosed:
                        pass

                async with trio.open_nursery() as nursery:
                    for n in range(200):
                        nursery.start_soon(one, n)
                    # SIGTERM once the server is answering this burst (a fixed sleep
                    # could end before a loaded machine had read a single send).
                    await answered.wait()
                    server.terminate()
                assert await server.wait() == 0
                assert wire.closed == 1001
                kinds = [type(frame).__name__ for frame in wire.pushes]
                assert "GoAway" in kinds
                acked = [r for r in replies if isinstance(r, Ok)]
                assert all(isinstance(r, Ok | Err) for r in replies)
                assert acked, "sends in flight at SIGTERM are committed and acked"
