"""Disabling a user closes their sockets on every instance within a second, whether
``sandcat admin`` (another process) or the admin API on one instance did it.

Two instances on one PostgreSQL: once with Kafka and no Redis (the revocation log
is the database's), once with Redis (its stream is the log).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import trio

from sandcat.client import HttpApi
from tests.client.cast import PASSWORD, Cast
from tests.cluster.conftest import Instance
from tests.cluster.test_fanout import pair  # noqa: F401 - the PostgreSQL + Redis fixture
from tests.e2e.wire import Wire, open_wire
from tests.passwords import serve_environment

#: The bound README.md promises.
WITHIN_S = 1.0


def admin_cli(config: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}
    done = subprocess.run(
        [sys.executable, "-m", "sandcat", "admin", *args, "--config", str(config), "--json"],
        cwd=config.parent,
        env=serve_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def closed_within(wires: list[Wire]) -> float:
    started = trio.current_time()
    with trio.fail_after(WITHIN_S * 5):
        while any(wire.closed is None for wire in wires):  # noqa: ASYNC110 - Wire has no event
            await trio.sleep(0.01)
    assert [wire.closed for wire in wires] == [4007] * len(wires)
    return trio.current_time() - started


async def disable_everywhere(a: Instance, b: Instance, config: Path) -> None:
    async with HttpApi(a.http_url) as api:
        cast = Cast(api, http_url=a.http_url, ws_url=a.ws_url)
        root, victim = await cast.person("root"), await cast.person("victim")
        assert admin_cli(config, "grant-admin", root.username) == {"granted": True}

        async def sockets(stack: AsyncExitStack) -> list[Wire]:
            wires = []
            for instance, device in ((a, "on-a"), (b, "on-b")):
                login = await api.login(victim.username, PASSWORD, device=device, platform="t")
                wires.append(
                    await stack.enter_async_context(
                        open_wire(instance.ws_url, login.tokens.access_token, device)
                    )
                )
            return wires

        async with AsyncExitStack() as stack:
            wires = await sockets(stack)
            done = await trio.to_thread.run_sync(admin_cli, config, "disable", victim.id)
            # From the command's exit (its interpreter start is not the servers' part).
            assert await closed_within(wires) < WITHIN_S
            assert len(done["ended_sessions"]) == 3
        root_auth = {"Authorization": f"Bearer {root.token}"}
        async with httpx.AsyncClient(timeout=10) as http:
            reply = await http.post(
                f"{a.http_url}/api/v1/admin/users/{victim.id}/enable", headers=root_auth
            )
            assert reply.json() == {"enabled": True}
            async with AsyncExitStack() as stack:
                wires = await sockets(stack)
                started = trio.current_time()
                reply = await http.post(
                    f"{b.http_url}/api/v1/admin/users/{victim.id}/disable", headers=root_auth
                )
                assert reply.status_code == 200, reply.text
                await closed_within(wires)
                assert trio.current_time() - started < WITHIN_S
            login = await http.post(
                f"{b.http_url}/api/v1/auth/login",
                json={"login": victim.username, "password": PASSWORD},
            )
            assert login.status_code == 403
            audit = await http.get(f"{a.http_url}/api/v1/admin/audit", headers=root_auth)
            assert [(e["action"], e["origin"]) for e in audit.json()["entries"]] == [
                ("disable", "127.0.0.1"),
                ("enable", "127.0.0.1"),
                ("disable", "cli"),
                ("grant-admin", "cli"),
            ]


async def test_disable_closes_sockets_on_both_instances_through_the_database_log(
    cluster: tuple[Instance, Instance], postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "sandcat.toml"
    config.write_text(f'[backends]\ndatabase_url = "{postgres_url}"\n', encoding="utf-8")
    await disable_everywhere(*cluster, config)


async def test_disable_closes_sockets_on_both_instances_through_redis(
    pair: tuple[Instance, Instance],  # noqa: F811 - the fixture imported above
    postgres_url: str,
    redis_url: str,
    redis_channel: str,
    tmp_path: Path,
) -> None:
    config = tmp_path / "sandcat.toml"
    config.write_text(
        f'[backends]\ndatabase_url = "{postgres_url}"\nredis_url = "{redis_url}"\n'
        f'redis_channel = "{redis_channel}"\nredis_prefix = "{redis_channel}:"\n',
        encoding="utf-8",
    )
    await disable_everywhere(*pair, config)
