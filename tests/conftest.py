"""Shared fixtures: a real Sandcat server on free loopback ports, and HTTP helpers.

Every test that needs a server gets its own, in-process, on a temporary data
directory; it talks to it over real sockets only.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.app import Server, run_server
from tests.kafka import session_kafka
from tests.mongo import database_url, session_mongo
from tests.passwords import FAST_PASSWORDS
from tests.postgres import PostgresServer, session_postgres
from tests.redis import session_redis
from tests.s3server import running_s3
from tests.scene import Api, make_config
from tests.tls_context import share_default_tls

share_default_tls()


@pytest.fixture
def server_overrides() -> dict[str, object]:
    """Override in a test module to configure the ``server`` fixture."""
    return {}


@pytest.fixture
async def server(
    tmp_path: Path, nursery: trio.Nursery, server_overrides: dict[str, object]
) -> AsyncIterator[Server]:
    config = make_config(tmp_path / "data", **server_overrides)
    running: Server = await nursery.start(
        lambda task_status: run_server(config, passwords=FAST_PASSWORDS, task_status=task_status)
    )
    yield running
    running.shutdown()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.http_port}", timeout=10
    ) as http:
        yield Api(http)


@pytest.fixture
def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.ws_port}/ws"


@pytest.fixture(scope="session")
def s3_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server for the session (rclone serve s3); an URL to append a bucket to."""
    with running_s3(tmp_path_factory.mktemp("s3") / "data") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session, started on first use."""
    with session_postgres() as running:
        yield running


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database on the session's PostgreSQL, dropped afterwards."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with no schema at all, dropped afterwards."""
    name = postgres_server.create_database(migrated=False)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """One real Kafka-compatible broker (tansu) for the whole session, started on first use."""
    with session_kafka() as bootstrap:
        yield bootstrap


_topics = itertools.count(1)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One real Redis-compatible server (Valkey) for the whole session, started on first use."""
    with session_redis() as url:
        yield url


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[str]:
    """One MongoDB wire-protocol server (briskdb, or $SANDCAT_TEST_MONGO_URL) per session."""
    with session_mongo() as url:
        yield url


@pytest.fixture
def mongo_url(mongo_server: str) -> str:
    """A URL naming a database of the session's MongoDB no other test uses."""
    return database_url(mongo_server)


@pytest.fixture
def redis_channel() -> str:
    """A pub/sub channel no other test uses (tests share the server, not channels)."""
    return f"sandcat-test-{os.getpid()}-{next(_topics)}"


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses (tests share the broker, not topics)."""
    return f"sandcat-test-{os.getpid()}-{next(_topics)}"
