"""The composition root: what it derives from configuration at startup."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.errors import ConfigError
from sandcat.store.backends import sqlite_path
from tests.passwords import FAST_PASSWORDS
from tests.scene import Api, make_config


async def test_login_hands_out_the_bound_websocket_port(server: Server, api: Api) -> None:
    username = "portcheck"
    await api.register(username)
    reply = await api.http.post(
        "/api/v1/auth/login", json={"login": username, "password": "correct horse 1"}
    )
    assert reply.json()["ws_url"] == f"ws://127.0.0.1:{server.ws_port}/ws"


def test_database_location(tmp_path: Path) -> None:
    assert sqlite_path(make_config(tmp_path)) == tmp_path / "sandcat.db"
    moved = make_config(tmp_path, **{"backends.database_url": "sqlite:////srv/chat.db"})
    assert sqlite_path(moved) == Path("/srv/chat.db")
    with pytest.raises(ConfigError, match="database_url"):
        sqlite_path(make_config(tmp_path, **{"backends.database_url": "mysql://x"}))


async def test_on_postgres_the_janitor_prepares_partitions_and_stops_on_drain(
    tmp_path: Path, postgres_url: str
) -> None:
    """Ready means this month's partitions exist; the drain does not wait for the janitor."""
    config = make_config(
        tmp_path / "data",
        **{"backends.database_url": postgres_url, "backends.partitions_ahead_months": 2},
    )
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: run_server(
                    config, clock=lambda: 1_900_000_000_000, task_status=task_status
                )
            )
            with psycopg.connect(postgres_url) as conn:
                tables = conn.execute(
                    "SELECT to_regclass('messages_2030_03'), to_regclass('messages_2030_05')"
                ).fetchone()
            assert tables == ("messages_2030_03", "messages_2030_05")
            assert not (tmp_path / "data" / "sandcat.db").exists()
            started = trio.current_time()
            server.shutdown()
        # Well inside the close grace a forgotten task would be cancelled at.
        assert trio.current_time() - started < 1.5


async def test_kafka_needs_postgresql_for_its_outbox(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", **{"backends.kafka_bootstrap": "127.0.0.1:9"})
    with pytest.raises(ConfigError, match=r"backends\.kafka_bootstrap.*postgresql"):
        await run_server(config, passwords=FAST_PASSWORDS)


async def test_on_postgres_with_kafka_the_instance_relays_its_outbox_and_retires(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    config = make_config(
        tmp_path / "data",
        **{
            "backends.database_url": postgres_url,
            "backends.kafka_bootstrap": kafka_bootstrap,
            "backends.kafka_topic": kafka_topic,
            "backends.kafka_partitions": 1,
        },
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                lambda task_status: run_server(
                    config, passwords=FAST_PASSWORDS, task_status=task_status
                )
            )
            assert server.instance
            server.shutdown()
    # Drained: the lease is given up, so a live instance would take over at once.
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT heartbeat_at = '-infinity' FROM outbox_owners WHERE instance = %s",
            (server.instance,),
        ).fetchone()
    assert row == (True,)
