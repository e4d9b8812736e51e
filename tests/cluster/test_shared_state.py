"""State two instances share through Redis: login limits and the revocation log.

The instances share PostgreSQL and one Redis key prefix but listen on
*different* pub/sub channels, so no session-end event passes between them:
only the revocation log can close B's socket of a session logged out on A.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.protocol import Err, Ok, Ping
from tests.cluster.conftest import TOKEN_SECRET, Instance
from tests.cluster.test_fanout import Sockets, sockets  # noqa: F401 - a fixture
from tests.passwords import FAST_PASSWORDS
from tests.scene import Api, make_config
from tests.store.shared_state import flushall


@pytest.fixture
async def pair(
    tmp_path: Path, nursery: trio.Nursery, postgres_url: str, redis_url: str, redis_channel: str
) -> AsyncIterator[tuple[Instance, Instance]]:
    servers: list[Server] = []
    for name in ("a", "b"):
        config = make_config(
            tmp_path / name,
            **{
                "backends.database_url": postgres_url,
                "backends.redis_url": redis_url,
                "backends.redis_channel": f"{redis_channel}-{name}",
                "backends.redis_prefix": f"{redis_channel}:",
                "backends.revocation_poll_s": 0.05,
                "auth.token_secret": TOKEN_SECRET,
                "auth.login_failures": 3,
                "chat.friend_requests_per_pair": 1,
                "gateway.user_rate_per_s": 0.01,
                "gateway.user_burst": 4,
                "gateway.user_lease": 2,
            },
        )
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
async def apis(pair: tuple[Instance, Instance]) -> AsyncIterator[tuple[Api, Api]]:
    async with (
        httpx.AsyncClient(base_url=pair[0].http_url, timeout=10) as first,
        httpx.AsyncClient(base_url=pair[1].http_url, timeout=10) as second,
    ):
        yield Api(first), Api(second)


async def _fail_login(api: Api, username: str) -> int:
    reply = await api.http.post(
        "/api/v1/auth/login", json={"login": username, "password": "wrong password 1"}
    )
    return reply.status_code


async def test_login_failures_on_one_instance_count_on_the_other(
    apis: tuple[Api, Api], redis_url: str
) -> None:
    on_a, on_b = apis
    alice = await on_a.account("phone")
    assert [await _fail_login(on_a, alice.username) for _ in range(3)] == [401, 401, 401]
    assert await _fail_login(on_b, alice.username) == 429
    # Redis losing its data forgets the count: attempts go through again, no errors.
    await flushall(redis_url)
    assert await _fail_login(on_b, alice.username) == 401


async def test_friend_requests_sent_on_one_instance_count_on_the_other(
    apis: tuple[Api, Api],
) -> None:
    on_a, on_b = apis
    alice, bob = await on_a.account("phone"), await on_a.account("phone")
    sent = await on_a.http.post(
        "/api/v1/friends/requests", json={"to": bob.id}, headers=on_a.auth(alice)
    )
    assert sent.status_code == 201, sent.text
    request_id = sent.json()["request"]["id"]
    cancelled = await on_a.http.post(
        f"/api/v1/friends/requests/{request_id}/cancel", headers=on_a.auth(alice)
    )
    assert cancelled.status_code == 200, cancelled.text
    again = await on_b.http.post(
        "/api/v1/friends/requests", json={"to": bob.id}, headers=on_b.auth(alice)
    )
    assert again.status_code == 429, again.text


@pytest.mark.parametrize("flush_first", [False, True], ids=["redis-intact", "after-flushall"])
async def test_a_logout_on_a_closes_bs_socket_through_the_log_alone(
    pair: tuple[Instance, Instance],
    apis: tuple[Api, Api],
    sockets: Sockets,  # noqa: F811 - the fixture
    redis_url: str,
    flush_first: bool,
) -> None:
    _, b = pair
    on_a, on_b = apis
    alice = await on_a.account("phone")
    phone = await sockets.open(b, alice.token, "phone")
    me = await on_b.http.get("/api/v1/users/me", headers=on_b.auth(alice))
    assert me.status_code == 200  # B now holds the session as live in its cache
    if flush_first:
        # Redis loses the cache, the counters and the log: nothing may go wrong.
        await flushall(redis_url)
    started = trio.current_time()
    reply = await on_a.http.post("/api/v1/auth/logout", headers=on_a.auth(alice))
    assert reply.status_code == 204
    with trio.fail_after(5):
        assert await phone.close_code() == 4007
    assert trio.current_time() - started < 1
    refused = await on_b.http.get("/api/v1/users/me", headers=on_b.auth(alice))
    assert refused.status_code == 401


async def test_one_users_frame_budget_is_shared_across_instances(
    pair: tuple[Instance, Instance],
    apis: tuple[Api, Api],
    sockets: Sockets,  # noqa: F811 - the fixture
) -> None:
    a, b = pair
    on_a, _ = apis
    alice = await on_a.account("phone")
    tablet = await on_a.login(alice.username, alice.password, "tablet")
    phone = await sockets.open(a, alice.token, "phone")
    pad = await sockets.open(b, tablet.token, "tablet")
    outcomes = [await raw.request(Ping(rid=raw.rid())) for raw in (phone, phone, pad, pad, pad)]
    assert [type(o) for o in outcomes] == [Ok, Ok, Ok, Ok, Err]
