"""``python -m bench cluster``: every scenario against a cluster of 1 to 4 instances.

PostgreSQL (embedded), a Kafka-compatible broker (tansu) and a Redis-compatible
server (Valkey) start on free loopback ports through the test suite's starters
(``tests/postgres.py``, ``tests/kafka.py``, ``tests/redis.py``, found beside
this package whatever the working directory; their ``SANDCAT_TEST_*``
variables name existing servers instead). Each run gets a fresh database
(``sandcat migrate`` applies the schema), its own Kafka topic and Redis
channel, and N ``sandcat serve`` instances on them. How each scenario places
its clients over the instances is in its docstring (``bench.scenarios``):
direct puts half of its pairs' receivers on the sender's instance and half
on the next one, so one run measures same-instance and cross-instance
delivery side by side. CPU and RSS are measured for every instance. Beside
each measured phase a probe process (``bench/probe.py``) times bare
PostgreSQL commits on the same server: the floor for send->ack. Nothing is
pinned: the cores run the servers, the backends and the load generator.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import trio

from bench.server import Target, _toml, spawn


class PostgresServer(Protocol):
    """What the bench uses of ``tests.postgres.PostgresServer``."""

    def url(self, database: str) -> str: ...

    def create_database(self, *, migrated: bool = True) -> str: ...


#: The repository: its ``tests`` package holds the backends' starters.
ROOT = Path(__file__).resolve().parents[1]
#: What ``nox -s bench-cluster`` runs: (label, scenario, params).
CLUSTER: list[tuple[str, str, dict[str, object]]] = [
    # Every pair crosses instances: the cross-instance maximum rate.
    (
        "cluster-direct-max",
        "direct",
        {"pairs": 2, "window": 256, "duration_s": 10.0, "cross": 1.0},
    ),
    # Half the pairs on one instance, half across: the latency comparison.
    (
        "cluster-direct-1000",
        "direct",
        {"pairs": 10, "rate": 1000.0, "window": 1024, "duration_s": 10.0},
    ),
    (
        "cluster-fanout-100",
        "fanout",
        {"members": 100, "senders": 1, "window": 8, "rate": 50.0, "duration_s": 10.0},
    ),
    ("cluster-catchup", "catchup", {"messages": 10000, "conversations": 10}),
    ("cluster-connect-2000", "connect", {"connections": 2000, "hold_s": 3.0}),
]
#: The embedded run ``--baseline`` adds: direct-max on SQLite, same parameters.
BASELINE: tuple[str, str, dict[str, object]] = (
    "embedded-direct-max",
    "direct",
    {"pairs": 2, "window": 256, "duration_s": 10.0},
)
#: Tiny parameters for the test suite.
CLUSTER_SMOKE: list[tuple[str, str, dict[str, object]]] = [
    ("cluster-direct", "direct", {"pairs": 2, "window": 4, "duration_s": 0.5}),
]


@dataclass
class Backends:
    postgres: PostgresServer
    kafka_bootstrap: str
    redis_url: str

    def database(self) -> str:
        """A new empty database's URL (``sandcat migrate`` fills it)."""
        return self.postgres.url(self.postgres.create_database(migrated=False))


@contextmanager
def backends() -> Iterator[Backends]:
    """PostgreSQL, Kafka and Redis for the whole command; stopped at the end."""
    # Imported by name: mypy checks bench, not the test suite's helpers.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        starters: list[Any] = [
            importlib.import_module(f"tests.{name}") for name in ("postgres", "kafka", "redis")
        ]
    except ImportError as exc:  # pragma: no cover - a copy of bench without tests/
        raise SystemExit(f"bench: cluster mode needs {ROOT / 'tests'} ({exc})") from exc
    with ExitStack() as stack:
        postgres = stack.enter_context(starters[0].session_postgres())
        kafka = stack.enter_context(starters[1].session_kafka())
        redis = stack.enter_context(starters[2].session_redis())
        yield Backends(postgres, kafka, redis)


def cluster_config(
    base: Mapping[str, object], backends: Backends, database_url: str, label: str
) -> dict[str, object]:
    return {
        **base,
        # No token secret: both instances read the signing key from PostgreSQL.
        "backends.database_url": database_url,
        "backends.kafka_bootstrap": backends.kafka_bootstrap,
        "backends.redis_url": backends.redis_url,
        "backends.kafka_topic": f"bench.{label}",
        "backends.redis_channel": f"bench.{label}",
        # Routing trusts the route table 2 x this after it starts (30 s by default):
        # short, so the measured phase runs routed rather than in the broadcast fallback.
        "signals.presence_refresh_s": 1.0,
    }


async def migrate(config: Mapping[str, object], root: Path) -> None:
    config_file = root / "migrate.toml"
    await trio.to_thread.run_sync(config_file.write_text, _toml(config))
    done = await trio.run_process(
        [sys.executable, "-m", "sandcat", "migrate", "--config", str(config_file)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sandcat migrate failed: {done.stderr.decode()}")


@asynccontextmanager
async def commit_probe(database_url: str, period_s: float = 0.01) -> AsyncIterator[list[float]]:
    """Bare PostgreSQL commits timed while the block runs; the list fills when it ends."""
    latencies: list[float] = []
    process = await trio.lowlevel.open_process(
        [sys.executable, str(Path(__file__).with_name("probe.py")), database_url, str(period_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    output = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            connected = trio.Event()

            async def collect() -> None:
                assert process.stdout is not None
                while chunk := await process.stdout.receive_some(65536):
                    output.extend(chunk)
                    if b"\n" in output:
                        connected.set()
                connected.set()  # it ended: the check after the block says how

            nursery.start_soon(collect)
            # Measure only once the probe is connected (a short phase could end first).
            with trio.fail_after(30):
                await connected.wait()
            try:
                yield latencies
            finally:
                await process.stdin.aclose()
    finally:
        with trio.move_on_after(10) as waiting:
            waiting.shield = True
            await process.wait()
        if process.returncode is None:
            process.kill()
    if process.returncode != 0:
        raise RuntimeError(f"bench: the commit probe failed ({process.returncode})")
    latencies.extend(json.loads(output.partition(b"\n")[2]))


async def run_cluster(
    runs: Sequence[tuple[str, str, Mapping[str, object]]],
    out: Path,
    *,
    backends: Backends,
    config: Mapping[str, object],
    instances: int = 2,
    plots: bool = True,
    baseline: Sequence[tuple[str, str, Mapping[str, object]]] = (),
) -> list[Path]:
    """Each run against fresh instances on a fresh database (``baseline`` runs on one
    embedded instance, for comparison in the same command); the JSON files written."""
    from bench.cli import run_one, run_set

    written = []
    for label, scenario, params in runs:
        print(f"bench: {label} ({scenario} {dict(params)})", file=sys.stderr, flush=True)
        database_url = await trio.to_thread.run_sync(backends.database)
        settings = cluster_config(config, backends, database_url, label)
        with tempfile.TemporaryDirectory(prefix="sandcat-bench-cluster-") as root:
            await migrate(settings, Path(root))
            async with AsyncExitStack() as stack:
                targets: list[Target] = [
                    await stack.enter_async_context(spawn(Path(root) / f"i{n}", settings))
                    for n in range(instances)
                ]
                result = await run_one(
                    targets[0],
                    scenario,
                    params,
                    pin=False,
                    cluster=targets,
                    probe=partial(commit_probe, database_url),
                )
        result.params["label"] = label
        result.params["instances"] = instances
        path = result.write(out, plots=plots)
        print(json.dumps(result.document()["numbers"], indent=1), file=sys.stderr, flush=True)
        written.append(path)
    if baseline:
        written += await run_set(baseline, out, config=config, pin=False, plots=plots)
    return written
