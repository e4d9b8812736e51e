"""One ``sandcat serve`` child process for a whole test module, driven over real sockets.

The limit-edge tests send hundreds of megabytes; one server per module (not
per test) keeps them to seconds, and a child process lets a test read the
server's own peak memory (``VmHWM`` in ``/proc/PID/status``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

_LISTENING = re.compile(r"listening on ws://[^:]+:(\d+)/ws and http://[^:]+:(\d+)")
#: A cold start imports quart, hypercorn and argon2: allow for a loaded machine.
_START_TIMEOUT_S = 60
_names = itertools.count(1)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    http_url: str
    data_dir: Path

    def peak_rss_bytes(self) -> int:
        """The server process's peak resident set (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
        assert found, status
        return int(found.group(1)) * 1024

    def blob_files(self) -> list[Path]:
        """Every blob the server stores (local backend), read behind its back."""
        objects = self.data_dir / "blobs" / "objects"
        return sorted(p for p in objects.rglob("*") if p.is_file())

    def spool_files(self) -> list[Path]:
        return sorted((self.data_dir / "spool").glob("*"))


@contextmanager
def served(tmp: Path, config_toml: str = "") -> Iterator[Served]:
    """Start ``python -m sandcat serve`` on free loopback ports with ``config_toml``."""
    data_dir = tmp / "data"
    config = tmp / "sandcat.toml"
    config.write_text(config_toml)
    log = tmp / "serve.log"
    command = [
        sys.executable,
        *("-m", "sandcat", "serve", "--config", str(config), "--data-dir", str(data_dir)),
        *("--ws-port", "0", "--http-port", "0", "--log-level", "WARNING"),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while (found := _LISTENING.search(log.read_text(errors="replace"))) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandcat did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Served(process, f"http://127.0.0.1:{found.group(2)}", data_dir)
    finally:
        process.kill()
        process.wait(timeout=30)


def account(http: httpx.Client) -> dict[str, str]:
    """A new user's bearer header."""
    username = f"edge{next(_names)}"
    password = "correct horse 1"
    reply = http.post("/api/v1/auth/register", json={"username": username, "password": password})
    assert reply.status_code == 201, reply.text
    reply = http.post(
        "/api/v1/auth/login",
        json={"login": username, "password": password, "device": "d1", "platform": "test"},
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_pieces(data: bytes, size: int = 65536) -> Iterable[bytes]:
    """``data`` as an iterator: httpx then sends it chunked, without a Content-Length."""
    return (data[at : at + size] for at in range(0, len(data), size))


def multipart(data: bytes, content_type: str, *, name: str = "upload.bin") -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with one other field and ``data`` as the file part."""
    boundary = "sandcat-edge-boundary-7f3a"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="caption"\r\n\r\nignored\r\n'
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


def send_upload(
    http: httpx.Client,
    path: str,
    who: dict[str, str],
    data: bytes,
    content_type: str,
    *,
    form: bool,
    chunked: bool,
    method: str = "POST",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """Send ``data`` raw or as multipart, with a Content-Length or chunked."""
    body, body_type = multipart(data, content_type) if form else (data, content_type)
    content: Any = in_pieces(body) if chunked else body
    return http.request(
        method,
        path,
        params=params,
        content=content,
        headers={**who, "Content-Type": body_type},
    )
