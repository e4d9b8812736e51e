"""The 1:1 send path's cost as counts, not time (issue 14's CI guard).

One sender and one online receiver, a window of 1 (every send waits for its
ack, so no batching depends on timing), a fixed number of messages. Per
message this counts what the path does: SQL statements run on the writer
connection, hand-offs of work to a thread, and the server's socket writes.
None of these depend on the machine's speed or load, so the guard cannot
flake; it fails when a change makes the path do more than its recorded
baseline + 10%. Lower a baseline when a change makes the path cheaper.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import trio

from sandcat.gateway.transport import WebSocket
from sandcat.protocol import Msg, Ok, Send
from sandcat.store.sqlite.database import Database
from tests.gateway.raw import Connect
from tests.scene import Api

#: Messages measured after the warm-up (the first sends open caches and statements).
MESSAGES = 40
WARM_UP = 5
#: What one 1:1 message costs on main. Recorded at 10 statements when this guard
#: was written; 6 since the SQLite append dedupes through its INSERT's conflict,
#: keeps member rows between appends and un-hides only hidden conversations
#: (BEGIN, INSERT, the SYNC version, max_seq, the sender's read_seq, COMMIT).
BASELINE = {"sql_statements": 6.0, "thread_handoffs": 1.0, "server_socket_writes": 2.0}
MARGIN = 1.10


class Counts:
    def __init__(self) -> None:
        self.sql_statements = 0
        self.thread_handoffs = 0
        self.server_socket_writes = 0

    def reset(self) -> None:
        self.sql_statements = self.thread_handoffs = self.server_socket_writes = 0


@pytest.fixture(autouse=True)
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    """Count statements on the writer, thread hand-offs and the server's socket writes."""
    seen = Counts()
    connect = Database._connect

    def traced(self: Database, *, readonly: bool) -> sqlite3.Connection:
        conn = connect(self, readonly=readonly)
        if not readonly:

            def statement(_sql: str) -> None:
                seen.sql_statements += 1

            conn.set_trace_callback(statement)
        return conn

    monkeypatch.setattr(Database, "_connect", traced)
    run_sync = trio.to_thread.run_sync

    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.thread_handoffs += 1
        return await run_sync(fn, *args, **kwargs)

    monkeypatch.setattr(trio.to_thread, "run_sync", counted)
    flush = WebSocket.flush

    def written(ws: WebSocket) -> bool:
        # One socket send() per flush of a non-empty outbox.
        if ws.queued_bytes:
            seen.server_socket_writes += 1
        return flush(ws)

    monkeypatch.setattr(WebSocket, "flush", written)
    return seen


async def test_one_direct_message_costs_no_more_than_its_baseline(
    api: Api, connect: Connect, counts: Counts
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    sender = await connect(alice.token)
    receiver = await connect(bob.token)

    async def one(n: int) -> None:
        rid = sender.rid()
        reply = await sender.request(
            Send(rid=rid, cid=cid, cmid=f"c{n}", kind=1, body={"text": "hi"})
        )
        assert isinstance(reply, Ok), reply
        push = await receiver.push()
        assert isinstance(push, Msg), push
        assert push.body == {"text": "hi"}

    for n in range(WARM_UP):
        await one(n)
    counts.reset()
    for n in range(WARM_UP, WARM_UP + MESSAGES):
        await one(n)
    measured = {
        "sql_statements": counts.sql_statements / MESSAGES,
        "thread_handoffs": counts.thread_handoffs / MESSAGES,
        "server_socket_writes": counts.server_socket_writes / MESSAGES,
    }
    over = {k: v for k, v in measured.items() if v > BASELINE[k] * MARGIN}
    assert not over, f"per message {measured}, baseline {BASELINE} + 10%"
