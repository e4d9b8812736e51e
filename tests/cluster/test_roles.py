"""Services by role (docs/roles.md) on PostgreSQL, Kafka (tansu) and Redis (Valkey).

A split cluster in this process: two gateways, one api, one worker. People
register and log in through the api (whose login hands out the gateway's
URL), connect to the gateways and talk across them; a group made through the
api reaches both gateways live (the api publishes its own outbox). Every role
answers /healthz and /metrics; a gateway and a worker answer API routes 404.

Then two worker processes: the singletons run on exactly one, and when it is
killed (SIGKILL) the other takes them over once the lease has run out.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.client import HttpApi
from tests.client.cast import Cast
from tests.cluster.conftest import TOKEN_SECRET, Instance, cluster_settings
from tests.passwords import FAST_PASSWORDS
from tests.scene import make_config
from tests.test_cli import child_env

#: The cluster singletons a worker runs (docs/roles.md).
SINGLETONS = {"uploads", "partitions", "inbox_retention"}


class Split:
    def __init__(self, gateways: list[Instance], api: Instance, worker: Instance) -> None:
        self.gateways = gateways
        self.api = api
        self.worker = worker

    @property
    def every(self) -> dict[str, Instance]:
        return {
            "gateway-a": self.gateways[0],
            "gateway-b": self.gateways[1],
            "api": self.api,
            "worker": self.worker,
        }


@pytest.fixture
async def split(
    tmp_path: Path,
    nursery: trio.Nursery,
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    redis_url: str,
    redis_channel: str,
) -> AsyncIterator[Split]:
    settings = {
        **cluster_settings(postgres_url, kafka_bootstrap, kafka_topic),
        "backends.redis_url": redis_url,
        "backends.redis_channel": redis_channel,
        "backends.kafka_delivery_slots": 4,
        "backends.postgres_pool_size": 4,
        "signals.presence_refresh_s": 0.5,
    }
    servers: list[Server] = []

    async def start(name: str, **more: object) -> Instance:
        config = make_config(tmp_path / name, **settings, **more)
        server: Server = await nursery.start(
            lambda task_status: run_server(
                config, passwords=FAST_PASSWORDS, task_status=task_status
            )
        )
        servers.append(server)
        return Instance(server)

    gateways = [await start(name, **{"server.role": "gateway"}) for name in ("ga", "gb")]
    api = await start("api", **{"server.role": "api", "server.public_ws_url": gateways[0].ws_url})
    worker = await start("worker", **{"server.role": "worker"})
    yield Split(gateways, api, worker)
    for server in servers:
        server.shutdown()


async def test_people_sign_up_through_the_api_and_talk_across_gateways(split: Split) -> None:
    a, b = split.gateways
    async with HttpApi(split.api.http_url) as api:
        cast = Cast(api, http_url=split.api.http_url, ws_url=a.ws_url)
        with trio.fail_after(90):
            alice, bob = await cast.person("alice"), await cast.person("bob")
            login = await api.login(bob.username, "correct horse 1", device="probe")
            assert login.ws_url == a.ws_url, "the api hands out the gateways' address"
            cid = await cast.befriend(alice, bob)
            async with (
                cast.client(alice, "laptop", ws_url=a.ws_url) as laptop,
                cast.client(bob, "phone", ws_url=b.ws_url) as phone,
            ):
                ack = await laptop.session.send(cid, text="hello across")
                msg = await phone.session.receive_message()
                assert (msg.cid, msg.seq, msg.body["text"]) == (cid, ack.seq, "hello across")
                await phone.session.send(cid, text="and back")
                msg = await laptop.session.receive_message()
                while msg.seq <= ack.seq:  # its own message, echoed to the sender
                    msg = await laptop.session.receive_message()
                assert (msg.seq, msg.body["text"]) == (ack.seq + 1, "and back")
                # A group changed over HTTP: its system message is committed by the
                # api and published from the api's own outbox to both gateways.
                group = await cast.group(alice, [bob], name="lunch")
                await api.update_group(alice.token, group.removeprefix("g:"), name="dinner")
                for session in (laptop.session, phone.session):
                    msg = await session.receive_message()
                    while msg.cid != group or msg.kind != 9:
                        msg = await session.receive_message()
                    assert isinstance(msg.body, dict), msg.body


async def test_every_role_serves_health_and_metrics_and_only_the_api_its_routes(
    split: Split,
) -> None:
    for name, instance in split.every.items():
        async with httpx.AsyncClient(base_url=instance.http_url, timeout=10) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}, name
            metrics = (await http.get("/metrics")).text
            assert "sandcat_leases_held" in metrics, name
            openapi = await http.get("/api/v1/openapi.json")
            login = await http.post("/api/v1/auth/login", json={"login": "x", "password": "y"})
            if name == "api":
                assert openapi.status_code == 200
                assert login.status_code == 401
            else:
                assert (openapi.status_code, login.status_code) == (404, 404), name
            if name.startswith("gateway"):
                assert "sandcat_send_queue_depth" in metrics
            else:
                assert "sandcat_send_queue_depth" not in metrics, name
    assert split.api.server.ws_port == split.worker.server.ws_port == 0
    # Only the worker runs the cluster singletons.
    # The worker took each lease before it was ready (the first try comes first).
    assert _gauge(await _metrics(split.worker), "sandcat_leases_held") == len(SINGLETONS)
    for name in ("gateway-a", "gateway-b", "api"):
        assert _gauge(await _metrics(split.every[name]), "sandcat_leases_held") == 0, name


async def _metrics(instance: Instance) -> str:
    async with httpx.AsyncClient(base_url=instance.http_url, timeout=10) as http:
        return (await http.get("/metrics")).text


def _gauge(text: str, family: str) -> float:
    found = re.search(rf"^{family} (\S+)$", text, re.M)
    assert found is not None, family
    return float(found.group(1))


# -- two worker processes: one runs the singletons, the other takes over ---------------

#: The lease of the singletons in the test below (15 s by default).
LEASE_S = 2.0
_START_S = 60.0


@contextmanager
def worker_process(
    tmp_path: Path, postgres_url: str, name: str, *args: str, env_role: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """``sandcat serve`` with ``args``; ``env_role``: the role from SANDCAT_ROLE instead."""
    (tmp_path / name).mkdir()
    config = tmp_path / name / "sandcat.toml"
    config.write_text(f"[backends]\ntask_lease_s = {LEASE_S}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandcat",
            "serve",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / name / "data"),
            "--http-port",
            "0",
            "--log-level",
            "WARNING",
            *args,
        ],
        env=child_env(
            SANDCAT_DATABASE_URL=postgres_url,
            SANDCAT_TOKEN_SECRET=TOKEN_SECRET,
            **({"SANDCAT_ROLE": "worker"} if env_role else {}),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


def _announced(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        assert process.stderr is not None
        raise AssertionError(f"exited {process.wait()}: {process.stderr.read()}")
    return line


def _holders(postgres_url: str) -> dict[str, str]:
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT name, holder FROM task_leases WHERE expires_at >= now()"
        ).fetchall()
    return {str(name): str(holder) for name, holder in rows}


def _pid(holder: str) -> int:
    """The process of an instance id (``host-pid-random``)."""
    return int(holder.rsplit("-", 2)[1])


def _wait_for(postgres_url: str, check: object, seconds: float) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        holders = _holders(postgres_url)
        if check(holders):  # type: ignore[operator]
            return holders
        assert time.monotonic() < deadline, holders
        time.sleep(0.05)


def test_two_workers_run_each_singleton_once_and_the_survivor_takes_over(
    tmp_path: Path, postgres_url: str
) -> None:
    with worker_process(tmp_path, postgres_url, "w1", "--role", "worker") as first:
        assert "(role worker) listening on http://" in _announced(first)
        # The first worker took every lease before it said it was listening.
        holders = _holders(postgres_url)
        assert set(holders) == SINGLETONS
        assert {_pid(holder) for holder in holders.values()} == {first.pid}
        with worker_process(tmp_path, postgres_url, "w2", env_role=True) as second:
            assert "(role worker) listening on http://" in _announced(second)
            # The second tries every third of the lease and gets none of them.
            time.sleep(2 * LEASE_S)
            assert _holders(postgres_url) == holders
            first.kill()  # SIGKILL: no release
            killed = time.monotonic()
            moved = _wait_for(
                postgres_url,
                lambda h: set(h) == SINGLETONS and {_pid(x) for x in h.values()} == {second.pid},
                _START_S,
            )
            took = time.monotonic() - killed
            # Once the lease ran out (renewed up to a third of it before the kill), the
            # survivor's next try (every third of it) takes each one: the bound is the
            # lease and a third, plus a loaded machine's slack.
            assert took <= LEASE_S + LEASE_S / 3 + 3.0, took
            assert len(set(moved.values())) == 1


def test_workers_of_one_role_share_the_http_port_and_run_each_singleton_once(
    tmp_path: Path, postgres_url: str
) -> None:
    with worker_process(
        tmp_path, postgres_url, "sup", "--workers", "2", "--role", "worker"
    ) as supervisor:
        line = _announced(supervisor)
        found = re.search(
            r"supervising 2 workers of role worker \(pids (\d+) (\d+)\) on (\S+)$", line
        )
        assert found is not None, line
        assert "ws://" not in line, "a worker role binds no WebSocket port"
        pids = {int(found.group(1)), int(found.group(2))}
        holders = _wait_for(postgres_url, lambda h: set(h) == SINGLETONS, _START_S)
        time.sleep(2 * LEASE_S)
        assert _holders(postgres_url) == holders, "each singleton stays with its one holder"
        # Started together, the two may have split the singletons between them.
        assert {_pid(holder) for holder in holders.values()} <= pids
        with httpx.Client(base_url=found.group(3), timeout=5) as http:
            deadline = time.monotonic() + _START_S
            while http.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert http.get("/api/v1/openapi.json").status_code == 404
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert _holders(postgres_url) == {}, "a clean stop releases the leases"
