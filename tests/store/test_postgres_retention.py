"""PostgreSQL retention specifics: whole partitions go (dropped or archived), rows
a skewed clock put in a later month go with them, and months that never had a
partition are swept row by row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import trio

from sandcat.store.messages import Appended, NewMessage
from sandcat.store.postgres.database import Database
from sandcat.store.postgres.partitions import ensure_partitions
from sandcat.store.postgres.retention import apply_retention
from tests.store.backend import Backend, make_user, open_backend
from tests.store.test_retention import AB, ms, scene, send


@pytest.fixture
async def backend(postgres_url: str, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend("postgres", tmp_path=tmp_path, postgres_url=postgres_url) as opened:
        yield opened


def query(url: str, text: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(text.encode()).fetchall()


async def test_a_retired_partition_is_dropped_or_archived(
    backend: Backend, postgres_url: str
) -> None:
    await scene(backend)
    await send(backend, AB, "jan", ms(2031, 1, 10))
    await send(backend, AB, "feb", ms(2031, 2, 10))
    assert isinstance(backend.db, Database)
    retired = await apply_retention(
        backend.db, now_ms=ms(2031, 3, 5), messages_days=30, archive=True
    )
    assert [(r.partition, r.min_seqs) for r in retired] == [("messages_2031_01", {AB: 2})]
    assert query(postgres_url, "SELECT count(*) FROM archived_messages_2031_01") == [(1,)]
    await apply_retention(backend.db, now_ms=ms(2031, 4, 5), messages_days=30, archive=False)
    assert query(postgres_url, "SELECT to_regclass('messages_2031_02')") == [(None,)]
    page = await backend.messages.pull("b", AB, after=0, limit=10)
    assert (page.min_seq, page.messages) == (3, ())


async def test_rows_a_skewed_clock_put_in_a_later_month_leave_too(backend: Backend) -> None:
    await scene(backend)
    await send(backend, AB, "s1", ms(2031, 1, 30))
    await send(backend, AB, "s2", ms(2031, 2, 2))  # this instance's clock ran ahead
    await send(backend, AB, "s3", ms(2031, 1, 31))
    await send(backend, AB, "s4", ms(2031, 2, 3))
    assert isinstance(backend.db, Database)
    await apply_retention(backend.db, now_ms=ms(2031, 2, 5), messages_days=1, archive=False)
    # January held seq 3: min_seq is 4, and seq 2 (in February) is gone with it.
    page = await backend.messages.pull("b", AB, after=0, limit=10)
    assert (page.min_seq, [m.seq for m in page.messages]) == (4, [4])


async def test_months_without_a_partition_are_swept_row_by_row(backend: Backend) -> None:
    await backend.users(make_user("a"), make_user("b"))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    store = backend.messages
    for cmid, when in (("old", ms(2020, 1, 1)), ("recent", ms(2031, 6, 1))):
        [outcome] = await store.append(
            [NewMessage("a", "a-d", AB, cmid, 1, b"\xa1x")], now_ms=when, open_direct=False
        )
        assert isinstance(outcome, Appended)
    assert isinstance(backend.db, Database)
    retired = await apply_retention(
        backend.db, now_ms=ms(2031, 6, 2), messages_days=30, archive=False
    )
    assert [(r.partition, r.min_seqs) for r in retired] == [("messages_default", {AB: 2})]
    page = await store.pull("b", AB, after=0, limit=10)
    assert (page.min_seq, [m.cmid for m in page.messages]) == (2, ["recent"])
    # Nothing left to do: another round retires nothing.
    await ensure_partitions(backend.db, now_ms=ms(2031, 6, 2), months_ahead=0)
    assert (
        await apply_retention(backend.db, now_ms=ms(2031, 6, 2), messages_days=30, archive=False)
        == []
    )


async def test_sends_during_retention_commit_and_keep_their_seqs(backend: Backend) -> None:
    await scene(backend)
    for month in range(1, 5):
        await send(backend, AB, f"old{month}", ms(2031, month, 10))
    assert isinstance(backend.db, Database)
    await ensure_partitions(backend.db, now_ms=ms(2031, 12, 1), months_ahead=0)
    sent: list[int] = []

    async def keep_sending() -> None:
        for n in range(20):
            sent.append(await send(backend, AB, f"new{n}", ms(2031, 12, 1)))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_sending)
            await apply_retention(
                backend.db, now_ms=ms(2031, 12, 1), messages_days=30, archive=False
            )
    assert sent == list(range(5, 25))
    page = await backend.messages.pull("b", AB, after=0, limit=50)
    assert (page.min_seq, [m.seq for m in page.messages]) == (5, list(range(5, 25)))
