"""``sandcat admin stats`` and ``GET /api/v1/admin/stats`` count the cluster's
connections with Redis: two instances on one PostgreSQL and one Redis, sockets on
both, asked of either instance and of the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.client import HttpApi
from tests.client.cast import PASSWORD, Cast
from tests.cluster.conftest import TOKEN_SECRET, Instance, instance_pair
from tests.cluster.test_admin import admin_cli
from tests.e2e.wire import Wire, open_wire
from tests.passwords import serve_environment

#: Rounds of the connection census in this test (each instance reports this often).
INTERVAL_S = 0.2


@pytest.fixture
async def pair(
    tmp_path: Path, nursery: trio.Nursery, postgres_url: str, redis_url: str, redis_channel: str
) -> AsyncIterator[tuple[Instance, Instance]]:
    settings = {
        "backends.database_url": postgres_url,
        "backends.redis_url": redis_url,
        "backends.redis_channel": redis_channel,
        "backends.redis_prefix": f"{redis_channel}:",
        "auth.token_secret": TOKEN_SECRET,
        "http.census_interval_s": INTERVAL_S,
    }
    async with instance_pair(nursery, tmp_path, settings) as pair:
        yield pair


async def counted(http: httpx.AsyncClient, url: str, token: str, want: int) -> dict[str, object]:
    """The instance's stats once they count ``want`` connections (a few census rounds)."""
    with trio.fail_after(INTERVAL_S * 25):
        while True:
            reply = await http.get(
                f"{url}/api/v1/admin/stats", headers={"Authorization": f"Bearer {token}"}
            )
            assert reply.status_code == 200, reply.text
            stats: dict[str, object] = reply.json()
            if stats["connections"] == want:
                return stats
            await trio.sleep(INTERVAL_S / 4)


def gauge(text: str, name: str) -> float:
    (value,) = [line.split()[1] for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(value)


async def test_stats_count_the_connections_of_every_instance(
    pair: tuple[Instance, Instance],
    postgres_url: str,
    redis_url: str,
    redis_channel: str,
    tmp_path: Path,
) -> None:
    a, b = pair
    config = tmp_path / "sandcat.toml"
    config.write_text(
        f'[backends]\ndatabase_url = "{postgres_url}"\nredis_url = "{redis_url}"\n'
        f'redis_channel = "{redis_channel}"\nredis_prefix = "{redis_channel}:"\n',
        encoding="utf-8",
    )
    async with HttpApi(a.http_url) as api, httpx.AsyncClient(timeout=10) as http:
        cast = Cast(api, http_url=a.http_url, ws_url=a.ws_url)
        root, ann = await cast.person("root"), await cast.person("ann")
        assert admin_cli(config, "grant-admin", root.username) == {"granted": True}

        async def connect(stack: AsyncExitStack, instance: Instance, device: str) -> Wire:
            login = await api.login(ann.username, PASSWORD, device=device, platform="t")
            return await stack.enter_async_context(
                open_wire(instance.ws_url, login.tokens.access_token, device)
            )

        async with AsyncExitStack() as on_a, AsyncExitStack() as on_b:
            # Two sockets on A, one on B.
            await connect(on_a, a, "a1")
            await connect(on_a, a, "a2")
            await connect(on_b, b, "b1")
            stats_a = await counted(http, a.http_url, root.token, 3)
            stats_b = await counted(http, b.http_url, root.token, 3)
            assert stats_a["connections_scope"] == stats_b["connections_scope"] == "cluster"
            # The gauges: this instance's own, and the cluster's.
            with trio.fail_after(INTERVAL_S * 25):
                while True:
                    text = (await http.get(f"{a.http_url}/metrics")).text
                    if gauge(text, "sandcat_cluster_connections") == 3:
                        break
                    await trio.sleep(INTERVAL_S / 4)
            assert gauge(text, "sandcat_connections") == 2
            # The command line reads the instances' reports in Redis (no /metrics needed).
            stats = await trio.to_thread.run_sync(admin_cli, config, "stats")
            assert (stats["connections"], stats["connections_scope"]) == (3, "cluster")
            text_out = await trio.to_thread.run_sync(admin_cli_text, config)
            assert "connections: 3 (cluster: every running instance's" in text_out
            # B's next report drops its closed socket; A reports its own afresh.
            await on_b.aclose()
            await counted(http, a.http_url, root.token, 2)
            async with AsyncExitStack() as on_b_again:
                await connect(on_b_again, b, "b2")
                await counted(http, a.http_url, root.token, 3)
                # B stops: its report is withdrawn, not left to expire (10 s).
                started = trio.current_time()
                b.server.shutdown()
                await counted(http, a.http_url, root.token, 2)
                assert trio.current_time() - started < 5


def admin_cli_text(config: Path) -> str:
    """``sandcat admin stats`` as an operator reads it (text, not --json)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}
    done = subprocess.run(
        [sys.executable, "-m", "sandcat", "admin", "stats", "--config", str(config)],
        cwd=config.parent,
        env=serve_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
