"""A dead instance's outbox is published by a live one; Kafka is never needed for an ack.

Two ``sandcat serve`` processes, A and B, share PostgreSQL and a Kafka broker
of this test's own (tansu). Bob listens on B over a raw socket that never
pulls: whatever he gets, the bus brought. Alice sends to him on A with many
sends in flight. The broker is frozen (SIGSTOP): sends are still acked, since
an ack needs only the PostgreSQL commit (G1), and A's events pile up in its
outbox. Then A is killed with SIGKILL and the broker thawed: B takes over A's
outbox rows once A's lease runs out and publishes them, and Bob receives
every message Alice got an ack for, live, at its acked seq. PULL agrees, and
the outbox ends empty.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psycopg
import pytest
import trio
from trio_websocket import ConnectionClosed

from sandcat.protocol import Msg, Ok, Pull, Send
from tests.cluster.conftest import TOKEN_SECRET
from tests.e2e.process import serve_process
from tests.e2e.wire import Wire, open_wire
from tests.kafka import Tansu
from tests.postgres import free_port
from tests.scene import Api

pytestmark = pytest.mark.slow

WINDOW = 16
#: Acks before the broker freezes, and acks while it is frozen (then the kill).
ACKS_LIVE = 100
ACKS_FROZEN = 150
LEASE_S = 1.0


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


async def _pull_all(wire: Wire, cid: str) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = []
    while True:
        after = int(messages[-1]["seq"]) if messages else 0  # type: ignore[call-overload]
        reply = await wire.call(Pull(rid=wire.rid(), cid=cid, after=after, limit=200))
        assert isinstance(reply, Ok), reply
        batch = reply.body["msgs"]
        assert isinstance(batch, list)
        messages.extend(batch)
        if not reply.body["more"]:
            return messages


async def test_a_killed_instances_outbox_is_taken_over_and_delivered(
    tmp_path: Path, postgres_url: str
) -> None:
    broker = Tansu(free_port(), tmp_path / "tansu.log")
    broker.start()
    config = tmp_path / "cluster.toml"
    config.write_text(
        "[backends]\n"
        'kafka_topic = "takeover"\n'
        "kafka_partitions = 3\n"
        "kafka_timeout_s = 2.0\n"
        f"outbox_lease_s = {LEASE_S}\n"
    )
    env = {
        "SANDCAT_DATABASE_URL": postgres_url,
        "SANDCAT_KAFKA_BOOTSTRAP": broker.bootstrap,
        "SANDCAT_TOKEN_SECRET": TOKEN_SECRET,
    }
    acked: dict[str, tuple[str, int, str, str]] = {}  # cmid -> (cid, seq, mid, text)
    try:
        with trio.fail_after(90):
            async with (
                serve_process(tmp_path / "a", "--config", str(config), env=env) as a,
                serve_process(tmp_path / "b", "--config", str(config), env=env) as b,
            ):
                async with httpx.AsyncClient(base_url=b.http_url, timeout=30) as http:
                    api = Api(http)
                    alice, bob = await api.account("phone"), await api.account("desk")
                    direct = await api.befriend(alice, bob)
                    group = await api.group(alice, [bob])
                async with open_wire(b.ws_url, bob.token, bob.device) as listener:
                    live, frozen = trio.Event(), trio.Event()

                    async def sender(wire: Wire, cid: str) -> None:
                        limiter = trio.Semaphore(WINDOW)

                        async def one(n: int) -> None:
                            cmid, text = f"{cid}-{n}", f"{n} to {cid}"
                            try:
                                reply = await wire.call(
                                    Send(
                                        rid=wire.rid(),
                                        cid=cid,
                                        cmid=cmid,
                                        kind=1,
                                        body={"text": text},
                                    )
                                )
                            except (ConnectionClosed, trio.BrokenResourceError):
                                return
                            finally:
                                limiter.release()
                            assert isinstance(reply, Ok), reply
                            acked[cmid] = (
                                cid,
                                int(reply.body["seq"]),
                                str(reply.body["mid"]),
                                text,
                            )
                            if len(acked) >= ACKS_LIVE:
                                live.set()
                            if len(acked) >= ACKS_LIVE + ACKS_FROZEN:
                                frozen.set()

                        async with trio.open_nursery() as sends:
                            for n in range(100_000):
                                await limiter.acquire()
                                if wire.closed is not None:
                                    return
                                sends.start_soon(one, n)

                    async with (
                        open_wire(a.ws_url, alice.token, alice.device) as w1,
                        open_wire(a.ws_url, alice.token, "laptop") as w2,
                        trio.open_nursery() as nursery,
                    ):
                        nursery.start_soon(sender, w1, direct)
                        nursery.start_soon(sender, w2, group)
                        await live.wait()
                        os.kill(broker.pid, signal.SIGSTOP)
                        await frozen.wait()
                        a.kill()
                        assert await a.wait() != 0
                    stranded = _count(postgres_url, "SELECT count(*) FROM outbox")
                    assert stranded > 0, "the kill must leave events in A's outbox"
                    os.kill(broker.pid, signal.SIGCONT)

                    want = {(cid, seq): mid for cid, seq, mid, _ in acked.values()}
                    with trio.fail_after(30):
                        while True:
                            got = {
                                (p.cid, p.seq): p.mid for p in listener.pushes if isinstance(p, Msg)
                            }
                            if want.keys() <= got.keys():
                                break
                            await trio.sleep(0.05)
                    assert all(got[key] == mid for key, mid in want.items())
                    with trio.fail_after(10):
                        while _count(postgres_url, "SELECT count(*) FROM outbox"):  # noqa: ASYNC110
                            await trio.sleep(0.05)

                    for cid in (direct, group):
                        log = await _pull_all(listener, cid)
                        seqs = [int(m["seq"]) for m in log]  # type: ignore[call-overload]
                        assert seqs == list(range(1, len(seqs) + 1))
                        stored = {int(m["seq"]): m for m in log}  # type: ignore[call-overload]
                        for c, seq, mid, text in acked.values():
                            if c == cid:
                                assert (stored[seq]["mid"], stored[seq]["body"]) == (
                                    mid,
                                    {"text": text},
                                )
    finally:
        if broker.running:
            os.kill(broker.pid, signal.SIGCONT)
        broker.stop()
