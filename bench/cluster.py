"""``python -m bench cluster``: the direct scenario against a two-instance cluster.

PostgreSQL (embedded), a Kafka-compatible broker (tansu) and a Redis-compatible
server (Valkey) start on free loopback ports through the test suite's starters
(``tests/postgres.py``, ``tests/kafka.py``, ``tests/redis.py``; their
``SANDCAT_TEST_*`` variables name existing servers instead). Each run gets a
fresh database (``sandcat migrate`` applies the schema), its own Kafka topic
and Redis channel, and two ``sandcat serve`` instances on them: senders
connect to the first, receivers to the second, so every message crosses the
outbox, Kafka and the other instance's consumer. Server CPU numbers are the
first instance's only; nothing is pinned.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from bench.server import Target, _toml, spawn


class PostgresServer(Protocol):
    """What the bench uses of ``tests.postgres.PostgresServer``."""

    def url(self, database: str) -> str: ...

    def create_database(self, *, migrated: bool = True) -> str: ...


#: What ``nox -s bench-cluster`` runs: (label, scenario, params).
CLUSTER: list[tuple[str, str, dict[str, object]]] = [
    ("cluster-direct-max", "direct", {"pairs": 1, "window": 256, "duration_s": 10.0}),
    (
        "cluster-direct-2500",
        "direct",
        {"pairs": 10, "rate": 2500.0, "window": 1024, "duration_s": 10.0},
    ),
]
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
    try:
        starters: list[Any] = [
            importlib.import_module(f"tests.{name}") for name in ("postgres", "kafka", "redis")
        ]
    except ImportError as exc:  # pragma: no cover - run outside the repository
        raise SystemExit(f"bench: cluster mode runs from the repository root ({exc})") from exc
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


async def run_cluster(
    runs: Sequence[tuple[str, str, Mapping[str, object]]],
    out: Path,
    *,
    backends: Backends,
    config: Mapping[str, object],
    instances: int = 2,
    plots: bool = True,
) -> list[Path]:
    """Each run against fresh instances on a fresh database; the JSON files written."""
    from bench.cli import run_one

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
                peer = targets[1] if len(targets) > 1 else None
                result = await run_one(targets[0], scenario, params, pin=False, peer=peer)
        result.params["label"] = label
        result.params["instances"] = instances
        path = result.write(out, plots=plots)
        print(json.dumps(result.document()["numbers"], indent=1), file=sys.stderr, flush=True)
        written.append(path)
    return written
