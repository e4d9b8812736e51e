"""Task leases in PostgreSQL and the cluster singletons run under them
(``sandcat.leadership``, docs/roles.md): one holder at a time, taken over once
it expires or is released, and a task stopped when its lease is lost.

The same with processes killed with SIGKILL: tests/cluster/test_roles.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from urllib.parse import urlsplit

import pytest
import trio

from sandcat.leadership import Leadership
from sandcat.metrics import Registry
from sandcat.store.postgres import open_database
from sandcat.store.postgres.database import Database
from sandcat.store.postgres.leases import PostgresLeaseStore
from tests.chaos.faultproxy import BLACKHOLE, ProxyHost

#: Short, so a take-over is quick; the checks below wait far longer than this.
LEASE_S = 0.6


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    async with open_database(postgres_url, pool_size=4, timeout_s=10) as database:
        yield database


@pytest.fixture
def leases(db: Database) -> PostgresLeaseStore:
    return PostgresLeaseStore(db)


async def test_one_holder_at_a_time_renewed_and_released(leases: PostgresLeaseStore) -> None:
    assert await leases.acquire("uploads", "a", lease_s=60)
    assert not await leases.acquire("uploads", "b", lease_s=60)
    assert await leases.acquire("uploads", "a", lease_s=60), "a renews its own"
    # Leases are independent of each other.
    assert await leases.acquire("partitions", "b", lease_s=60)
    assert await leases.holders() == {"uploads": "a", "partitions": "b"}
    await leases.release("uploads", "b")  # not b's: nothing happens
    assert not await leases.acquire("uploads", "b", lease_s=60)
    await leases.release("uploads", "a")
    assert await leases.holders() == {"partitions": "b"}
    assert await leases.acquire("uploads", "b", lease_s=60), "released: taken at once"


async def test_an_expired_lease_is_taken_over(leases: PostgresLeaseStore) -> None:
    assert await leases.acquire("uploads", "a", lease_s=LEASE_S)
    assert not await leases.acquire("uploads", "b", lease_s=LEASE_S)
    await trio.sleep(LEASE_S + 0.2)
    assert await leases.acquire("uploads", "b", lease_s=LEASE_S)
    assert not await leases.acquire("uploads", "a", lease_s=LEASE_S), "a was too late"


class Runs:
    """A singleton task that records which instance runs it."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.changed = trio.Event()

    async def task(self, name: str, *, task_status: trio.TaskStatus[None]) -> None:
        self.running.add(name)
        self.changed.set()
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.running.discard(name)
            self.changed.set()

    async def until(self, running: set[str]) -> None:
        while self.running != running:
            self.changed = trio.Event()
            await self.changed.wait()


def leader(leases: PostgresLeaseStore | None, holder: str) -> Leadership:
    held = Registry().gauge("sandcat_leases_held", "held")
    return Leadership(leases, holder=holder, lease_s=LEASE_S, held=held)


async def test_the_task_runs_on_one_instance_and_moves_when_it_stops(
    leases: PostgresLeaseStore,
) -> None:
    runs = Runs()
    a, b = leader(leases, "a"), leader(leases, "b")
    async with trio.open_nursery() as nursery:
        stop_a = trio.CancelScope()

        async def run_a(task_status: trio.TaskStatus[None]) -> None:
            with stop_a:
                await a.task("uploads", partial(runs.task, "a"))(task_status=task_status)

        await nursery.start(run_a)
        # The first try happens before started: a holder's task already runs.
        assert runs.running == {"a"}
        assert a.holding == {"uploads"}
        await nursery.start(b.task("uploads", partial(runs.task, "b")))
        await trio.sleep(3 * LEASE_S)  # b tried several times meanwhile
        assert runs.running == {"a"}
        assert b.holding == set()
        # A clean stop releases the lease: b takes it at its next try.
        stop_a.cancel()
        with trio.fail_after(10):
            await runs.until({"b"})
        assert await leases.holders() == {"uploads": "b"}
        assert b.holding == {"uploads"}
        nursery.cancel_scope.cancel()
    assert await leases.holders() == {}, "released on shutdown"


async def test_a_holder_whose_lease_was_taken_stops_its_task(
    leases: PostgresLeaseStore, db: Database
) -> None:
    runs = Runs()
    a = leader(leases, "a")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.task("partitions", partial(runs.task, "a")))
        assert runs.running == {"a"}
        # Another holder took it (as if a had been silent past its lease).
        await db.write(
            lambda conn: conn.execute(
                "UPDATE task_leases SET holder = 'thief', expires_at = now() + interval '1 hour'"
            )
        )
        with trio.fail_after(10):
            await runs.until(set())
        assert a.holding == set()
        nursery.cancel_scope.cancel()
    assert await leases.holders() == {"partitions": "thief"}, "not a's to release"


async def test_without_a_lease_store_the_task_simply_runs() -> None:
    runs = Runs()
    task = partial(runs.task, "solo")
    assert leader(None, "solo").task("uploads", task) is task


async def test_a_holder_cut_off_from_the_database_stops_before_another_takes_over(
    leases: PostgresLeaseStore, postgres_url: str
) -> None:
    """A holder that cannot renew stops its task once its lease may have run out as
    it counts (from when it sent its last renewal), which is never after the lease
    ran out in the database: the task never runs on two instances at once."""
    url = urlsplit(postgres_url)
    host = ProxyHost()
    proxy = host.add("postgres", url.port or 5432)
    host.start()
    runs = Exclusive()
    try:
        via_proxy = url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}").geturl()
        async with (
            open_database(via_proxy, pool_size=2, timeout_s=LEASE_S) as cut_db,
            trio.open_nursery() as nursery,
        ):
            a = leader(PostgresLeaseStore(cut_db), "a")
            await nursery.start(a.task("uploads", partial(runs.task, "a")))
            assert runs.running == {"a"}
            proxy.set(BLACKHOLE)  # a is partitioned from PostgreSQL
            b = leader(leases, "b")
            await nursery.start(b.task("uploads", partial(runs.task, "b")))
            with trio.fail_after(20):
                await runs.until({"b"})
            assert runs.started == ["a", "b"], "b started only after a stopped"
            assert a.holding == set()
            proxy.heal()
            nursery.cancel_scope.cancel()
    finally:
        host.heal_all()
        host.stop()


class Exclusive(Runs):
    """``Runs`` that fails if the task starts while another instance runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    async def task(self, name: str, *, task_status: trio.TaskStatus[None]) -> None:
        assert not self.running, f"{name} started while {self.running} ran"
        self.started.append(name)
        await super().task(name, task_status=task_status)
