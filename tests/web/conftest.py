"""Browser fixtures: ``sandcat serve`` as a child process and Debian's headless Chromium.

The browser tests run only when ``SANDCAT_BROWSER=1`` (``nox -s browser`` sets it,
after installing Chromium with apt and the Node packages with npm); elsewhere they
are skipped, so the README's test command needs neither.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SANDCAT_CHROMIUM", "/usr/bin/chromium")
#: Where the run leaves its screenshots (the README shows them).
SCREENSHOTS = Path(os.environ.get("SANDCAT_SCREENSHOTS", ROOT / "docs" / "screenshots"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # The tests run in a network namespace with loopback only: let WebRTC use it.
    "--allow-loopback-in-peer-connection",
]
_LISTENING = re.compile(r"listening on ws://[^:]+:(\d+)/ws and http://[^:]+:(\d+)")

browser_only = pytest.mark.skipif(
    os.environ.get("SANDCAT_BROWSER") != "1",
    reason="browser tests run in `nox -s browser` (SANDCAT_BROWSER=1)",
)


@dataclass
class Served:
    base_url: str
    ws_port: int
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``python -m sandcat serve`` on free loopback ports with a fresh data directory."""
    data = tmp_path_factory.mktemp("browser-data")
    config = data / "sandcat.toml"
    # TURN credentials for calls (the relay itself is not needed on loopback).
    config.write_text(
        '[calls]\nturn_secret = "browser-test-turn-secret"\n'
        'turn_urls = "turn:127.0.0.1:3478?transport=udp"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "sandcat", "serve", "--config", str(config), "--data-dir", str(data),
         "--ws-port", "0", "--http-port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if found := _LISTENING.search(line):
            break
    else:
        process.wait(10)
        raise RuntimeError("sandcat exited before listening:\n" + "".join(seen))
    try:
        yield Served(f"http://127.0.0.1:{found.group(2)}", int(found.group(1)), process)
    finally:
        process.terminate()
        process.wait(20)
        process.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
