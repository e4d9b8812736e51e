"""Message retention (G7) on SQLite and PostgreSQL, with a controlled clock: old
messages leave, each conversation's min_seq moves past them, PULL and SYNC say
so, and every seq from min_seq on is still there (no silent hole)."""

from __future__ import annotations

from datetime import UTC, datetime

import trio

from sandcat.store.messages import Appended, NewMessage
from sandcat.store.postgres import retention as pg_retention
from sandcat.store.postgres.database import Database as PostgresDatabase
from sandcat.store.postgres.partitions import ensure_partitions
from sandcat.store.sqlite import retention as sqlite_retention
from sandcat.store.sqlite.database import Database as SqliteDatabase
from tests.store.backend import Backend, make_user

AB = "d:a:b"
GROUP = "g:team"
DAY_MS = 86_400_000


def ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp() * 1000)


async def scene(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"), make_user("c"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    await backend.open_conversation(GROUP, "group", ("a", "b", "c"))
    if isinstance(backend.db, PostgresDatabase):
        # The months the messages below fall in, as a running janitor would have made.
        for month in range(1, 6):
            await ensure_partitions(backend.db, now_ms=ms(2031, month, 1), months_ahead=0)


async def send(backend: Backend, cid: str, cmid: str, when: int) -> int:
    [outcome] = await backend.messages.append(
        [NewMessage("a", "a-d", cid, cmid, 1, b"\xa1x")], now_ms=when, open_direct=False
    )
    assert isinstance(outcome, Appended)
    return outcome.message.seq


async def retire(backend: Backend, *, now_ms: int, days: int) -> None:
    if isinstance(backend.db, SqliteDatabase):
        await sqlite_retention.apply_retention(backend.db, now_ms=now_ms, messages_days=days)
    else:
        await pg_retention.apply_retention(
            backend.db, now_ms=now_ms, messages_days=days, archive=False
        )


async def test_retention_moves_min_seq_past_what_it_removed(backend: Backend) -> None:
    await scene(backend)
    for n in range(3):
        await send(backend, AB, f"jan{n}", ms(2031, 1, 10 + n))
    await send(backend, AB, "mar0", ms(2031, 3, 20))
    await send(backend, AB, "mar1", ms(2031, 3, 21))
    await send(backend, GROUP, "g0", ms(2031, 3, 22))
    _, before = await backend.messages.conversations("b", since=None)
    # May 15 minus 60 days is March 16: January (and February) are past the policy.
    await retire(backend, now_ms=ms(2031, 5, 15), days=60)
    page = await backend.messages.pull("b", AB, after=0, limit=10)
    assert (page.min_seq, page.max_seq) == (4, 5)
    assert [m.seq for m in page.messages] == [4, 5]
    # A pull from inside the removed range starts at min_seq, never silently short.
    assert [m.seq for m in (await backend.messages.pull("b", AB, after=1, limit=10)).messages] == [
        4,
        5,
    ]
    group = await backend.messages.pull("c", GROUP, after=0, limit=10)
    assert (group.min_seq, [m.seq for m in group.messages]) == (1, [1])
    # SYNC carries the new min_seq, with a new version for incremental syncs.
    states, _ = await backend.messages.conversations("b", since=None)
    assert {s.cid: s.min_seq for s in states} == {AB: 4, GROUP: 1}
    changed, _ = await backend.messages.conversations("b", since=before)
    assert [(s.cid, s.min_seq) for s in changed] == [(AB, 4)]
    # Seqs never regress (G8): the next message is 6.
    assert await send(backend, AB, "may0", ms(2031, 5, 15)) == 6
    # Running again removes nothing more and moves nothing back.
    await retire(backend, now_ms=ms(2031, 5, 15), days=60)
    again = await backend.messages.pull("b", AB, after=0, limit=10)
    assert (again.min_seq, [m.seq for m in again.messages]) == (4, [4, 5, 6])


async def test_no_retention_round_removes_recent_messages(backend: Backend) -> None:
    await scene(backend)
    await send(backend, AB, "x", ms(2031, 4, 30))
    await retire(backend, now_ms=ms(2031, 5, 15), days=60)
    page = await backend.messages.pull("b", AB, after=0, limit=10)
    assert (page.min_seq, [m.seq for m in page.messages]) == (1, [1])


async def test_the_janitor_applies_retention_on_its_clock(backend: Backend) -> None:
    await scene(backend)
    await send(backend, AB, "old", ms(2031, 1, 10))
    await send(backend, AB, "new", ms(2031, 5, 10))
    now = ms(2031, 5, 15)

    async def run(task_status: trio.TaskStatus[None]) -> None:
        if isinstance(backend.db, SqliteDatabase):
            await sqlite_retention.run_retention_janitor(
                backend.db, lambda: now, messages_days=30, interval_s=60, task_status=task_status
            )
        else:
            from sandcat.store.postgres.partitions import run_partition_janitor

            await run_partition_janitor(
                backend.db,
                lambda: now,
                months_ahead=1,
                interval_s=60,
                messages_days=30,
                task_status=task_status,
            )

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        with trio.fail_after(10):
            while True:
                if (await backend.messages.pull("b", AB, after=0, limit=10)).min_seq == 2:
                    break
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
