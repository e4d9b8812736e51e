"""Two Sandcat instances in this process sharing one PostgreSQL database and one Kafka topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.client import HttpApi
from tests.client.cast import Cast
from tests.passwords import FAST_PASSWORDS
from tests.scene import make_config

#: Every instance of a cluster signs and checks the same access tokens.
TOKEN_SECRET = "cluster-test-secret-0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Instance:
    server: Server

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.ws_port}/ws"


def cluster_settings(postgres_url: str, kafka_bootstrap: str, topic: str) -> dict[str, object]:
    return {
        "backends.database_url": postgres_url,
        "backends.kafka_bootstrap": kafka_bootstrap,
        "backends.kafka_topic": topic,
        "backends.kafka_partitions": 3,
        "backends.kafka_timeout_s": 5.0,
        "auth.token_secret": TOKEN_SECRET,
    }


@pytest.fixture
async def cluster(
    tmp_path: Path,
    nursery: trio.Nursery,
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
) -> AsyncIterator[tuple[Instance, Instance]]:
    settings = cluster_settings(postgres_url, kafka_bootstrap, kafka_topic)
    async with instance_pair(nursery, tmp_path, settings) as pair:
        yield pair


@asynccontextmanager
async def instance_pair(
    nursery: trio.Nursery, tmp_path: Path, settings: dict[str, object]
) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances ``a`` and ``b`` with ``settings``, in ``nursery``; shut down on exit."""
    servers: list[Server] = []
    for name in ("a", "b"):
        config = make_config(tmp_path / name, **settings)
        servers.append(
            await nursery.start(
                lambda task_status, c=config: run_server(
                    c, passwords=FAST_PASSWORDS, task_status=task_status
                )
            )
        )
    yield Instance(servers[0]), Instance(servers[1])
    for server in servers:
        server.shutdown()


@pytest.fixture
async def cast(cluster: tuple[Instance, Instance]) -> AsyncIterator[Cast]:
    """People made through instance A (any instance would do: they share the database)."""
    first = cluster[0]
    async with HttpApi(first.http_url) as api:
        yield Cast(api, http_url=first.http_url, ws_url=first.ws_url)
