"""/metrics on a real server: the connection gauges count what their help says, and the
cluster-wide census (registered users, active sessions) follows the database."""

from __future__ import annotations

import re

import pytest
import trio
import trio.testing

from sandcat.domain.census import run_census
from sandcat.errors import StoreUnavailable
from sandcat.metrics import Registry
from sandcat.store.census import Census
from tests.gateway.raw import Connect
from tests.scene import Api


@pytest.fixture(params=["sqlite", "postgres"])
def server_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    overrides: dict[str, object] = {"http.census_interval_s": 0.05}
    if request.param == "postgres":
        overrides["backends.database_url"] = request.getfixturevalue("postgres_url")
    return overrides


def _gauges(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in re.findall(r"^(sandcat_[a-z_]+) (\S+)$", text, re.MULTILINE)
    }


async def _until(api: Api, **expected: float) -> dict[str, float]:
    """The gauges once they show ``expected`` (the census is re-read every 50 ms)."""
    seen: dict[str, float] = {}
    with trio.move_on_after(10):
        while True:
            seen = _gauges((await api.http.get("/metrics")).text)
            if all(seen.get(name) == value for name, value in expected.items()):
                return seen
            await trio.sleep(0.05)
    raise AssertionError(f"expected {expected}, /metrics said {seen}")


async def test_gauges_count_users_sessions_and_sockets(api: Api, connect: Connect) -> None:
    text = (await api.http.get("/metrics")).text
    assert "# HELP sandcat_registered_users Accounts in the database" in text
    assert "(cluster-wide" in text
    assert "# HELP sandcat_connections Authenticated WebSocket connections (this instance)." in text
    await _until(api, sandcat_registered_users=0, sandcat_active_sessions=0)

    await api.register()  # registered, never signed in: no session
    alice, bob = await api.account(), await api.account()
    await api.login(bob.username, bob.password, "phone")  # a second device of bob
    await _until(api, sandcat_registered_users=3, sandcat_active_sessions=3)

    # A socket that has not said HELLO is open, but not an authenticated connection.
    waiting = await connect()
    seen = await _until(api, sandcat_open_sockets=1)
    assert seen["sandcat_connections"] == 0
    assert seen["sandcat_connected_users"] == 0
    await connect(alice.token)
    await connect(bob.token, device="d1")
    await connect(bob.token, device="d2")
    seen = await _until(api, sandcat_open_sockets=4, sandcat_connections=3)
    assert seen["sandcat_connected_users"] == 2
    await waiting.ws.aclose()
    await _until(api, sandcat_open_sockets=3, sandcat_connections=3)

    # Logging out ends a session: the census sees it at its next read.
    reply = await api.http.post(
        "/api/v1/auth/logout", json={"refresh_token": alice.refresh_token}, headers=api.auth(alice)
    )
    assert reply.status_code in (200, 204), reply.text
    await _until(api, sandcat_registered_users=3, sandcat_active_sessions=2)


class _FlakyCensus:
    """A census store whose first read fails as a database outage would."""

    def __init__(self) -> None:
        self.reads = 0
        self.second = trio.Event()

    async def census(self, *, now_ms: int) -> Census:
        self.reads += 1
        if self.reads == 1:
            raise StoreUnavailable("database away")
        self.second.set()
        return Census(users=7, sessions=now_ms)


async def test_a_failed_census_keeps_the_last_values_and_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    users, sessions = registry.gauge("u", "u"), registry.gauge("s", "s")
    users.set(3)
    store = _FlakyCensus()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_census(
                store,
                users=users,
                sessions=sessions,
                interval_s=0.01,
                clock=lambda: 5,
                task_status=task_status,
            )
        )
        assert users.value() == 3  # the failed first read changed nothing
        await store.second.wait()
        await trio.testing.wait_all_tasks_blocked()  # run_census sets them, then sleeps
        nursery.cancel_scope.cancel()
    assert (users.value(), sessions.value()) == (7, 5)
    assert "census: counting users and sessions failed" in caplog.text
