"""Upgrades are safe: a data directory written by an older Sandcat (commit 6388239,
schema version 6: tests/fixtures/data-6388239) is migrated and served by this one,
with its accounts, conversations and seqs intact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sandcat.client import open_client
from tests.e2e.process import serve_process
from tests.passwords import serve_environment

FIXTURE = Path(__file__).parent / "fixtures" / "data-6388239"
PASSWORD = "correct horse 1"


def sandcat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandcat", *args],
        env=serve_environment(
            {k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_data_dir_of_6388239_is_migrated_and_served(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data, ignore=shutil.ignore_patterns("*.py", "*.md"))
    old = sandcat("check", "--data-dir", str(data))
    assert old.returncode == 1
    assert "schema version 6" in old.stdout
    async with serve_process(data) as server:
        async with (
            open_client(server.http_url, login="ann", password=PASSWORD, device="a") as ann,
            open_client(server.http_url, login="bob", password=PASSWORD, device="b") as bob,
        ):
            listed = await ann.api.conversations(await ann.access_token())
            cids = {c.cid: c for c in listed.conversations}
            direct = next(cid for cid in cids if cid.startswith("d:"))
            group = next(cid for cid in cids if cid.startswith("g:"))
            assert (await ann.session.send(direct, "after the upgrade")).seq == 6
            assert (await bob.session.send(group, "still here")).seq == 2
        server.terminate()
        assert await server.wait() == 0
    new = sandcat("check", "--data-dir", str(data))
    assert new.returncode == 0, new.stdout
    assert "2 conversations, 8 messages" in new.stdout
