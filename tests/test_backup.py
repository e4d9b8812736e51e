"""``sandcat backup``, ``restore`` and ``check`` (sandcat/backup.py) against a real
server: a backup taken under write load, restored into an empty data directory,
holds every message acked before the backup started, with seqs contiguous per
conversation and every referenced blob present."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from sandcat.backup import BackupError, backup, check, restore
from sandcat.client import Ack, HttpApi, open_client
from sandcat.config import load_config
from sandcat.errors import ConfigError
from tests.e2e.process import serve_process
from tests.passwords import serve_environment

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


async def _until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(60):
        for _ in iter(int, 1):
            if condition():
                return
            await trio.sleep(0.05)


async def test_a_backup_under_write_load_restores_every_acked_message(tmp_path: Path) -> None:
    data, dest, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    acked: list[tuple[Ack, str | None]] = []
    before: list[tuple[Ack, str | None]] = []
    async with serve_process(data) as server:
        async with HttpApi(server.http_url) as api:
            for name in ("ann", "bob"):
                await api.register(name, PASSWORD)
        async with (
            open_client(server.http_url, login="ann", password=PASSWORD, device="a") as ann,
            open_client(server.http_url, login="bob", password=PASSWORD, device="b") as bob,
        ):
            asked = await ann.api.request_friend(await ann.access_token(), bob.user_id)
            friend = await bob.api.accept_friend(await bob.access_token(), asked.id)
            group = await ann.api.create_group(await ann.access_token(), "g", [bob.user_id])
            stop = trio.Event()

            async def write(client: object, cid: str, tag: str) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    if n % 10 == 0:
                        sent = await client.send_file(  # type: ignore[attr-defined]
                            cid, f"{tag}{n}".encode() * 50, content_type="text/plain",
                            kind="file", name=f"{n}.txt",
                        )  # fmt: skip
                        acked.append((sent.ack, sent.file.id))
                    else:
                        ack = await client.session.send(cid, f"{tag} {n}")  # type: ignore[attr-defined]
                        acked.append((ack, None))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(write, ann, friend.cid, "a")
                nursery.start_soon(write, bob, group.cid, "b")
                nursery.start_soon(write, ann, group.cid, "c")
                await _until(lambda: len(acked) >= 60)
                before = list(acked)
                done = await trio.to_thread.run_sync(
                    sandcat, "backup", str(dest), "--data-dir", str(data)
                )
                after_backup = len(acked)
                # The load went on meanwhile; and after.
                await _until(lambda: len(acked) >= after_backup + 20)
                stop.set()
        server.terminate()
        assert await server.wait() == 0
    assert done.returncode == 0, done.stderr
    assert "backed up schema" in done.stdout
    assert len(acked) > len(before) + 20
    print(f"acked before the backup started: {len(before)}, acked in all: {len(acked)}")
    restore_run = sandcat("restore", str(dest), "--data-dir", str(restored))
    assert restore_run.returncode == 0, restore_run.stderr
    checked = sandcat("check", "--data-dir", str(restored))
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.startswith("ok: schema"), checked.stdout
    with sqlite3.connect(restored / "sandcat.db") as db:
        stored = {(cid, seq) for cid, seq in db.execute("SELECT cid, seq FROM messages")}
    files = [file_id for _, file_id in before if file_id]
    assert files
    print(f"restored: {len(stored)} messages; {checked.stdout.strip()}")
    for ack, file_id in before:
        assert (ack.cid, ack.seq) in stored
        if file_id:
            assert (restored / "blobs" / "objects" / "u" / file_id).is_file()
    async with serve_process(restored) as again:  # the restored data dir serves
        async with open_client(again.http_url, login="ann", password=PASSWORD, device="a") as ann:
            ack = await ann.session.send(before[0][0].cid, "after the restore")
            assert ack.seq > max(a.seq for a, _ in before if a.cid == ack.cid)
        again.terminate()
        assert await again.wait() == 0


def test_check_finds_a_hole_a_missing_blob_and_an_old_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load_config(overrides={"server.data_dir": str(data)})
    with pytest.raises(BackupError, match="no database"):
        check(config)
    with pytest.raises(BackupError, match="no database"):
        backup(config, tmp_path / "b")
    assert sandcat("migrate", "--data-dir", str(data)).returncode == 0
    assert check(config).ok
    with sqlite3.connect(data / "sandcat.db") as db:
        for seq in (1, 2, 4):
            db.execute(
                "INSERT INTO messages (cid, seq, mid, sender, device, cmid, kind, body, created_at)"
                " VALUES ('d:x', ?, ?, 'u', 'd', ?, 1, x'80', 0)",
                (seq, f"m{seq}", f"c{seq}"),
            )
        db.execute(
            "INSERT INTO uploads (id, owner, kind, content_type, state, created_at, has_thumb)"
            " VALUES ('F1', 'u', 'image', 'image/png', 'ready', 0, 1)"
        )
        db.execute("INSERT INTO message_files (cid, seq, file_id) VALUES ('d:x', 1, 'F1')")
        db.execute("INSERT INTO message_files (cid, seq, file_id) VALUES ('d:x', 2, 'F2')")
        db.execute("PRAGMA user_version = 1")
    report = check(config)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "schema version 1" in text
    assert "seqs 1..4 but 3 messages" in text
    assert "blob u/F1 is missing" in text
    assert "F1: its thumbnail is missing" in text
    assert "F2: sent in a message but not in uploads" in text
    failed = sandcat("check", "--data-dir", str(data))
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[-1].startswith("FAILED: schema 1, 1 conversations")


def test_backup_and_restore_refuse_what_they_would_overwrite_or_cannot_do(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    config = load_config(overrides={"server.data_dir": str(data)})
    assert sandcat("migrate", "--data-dir", str(data)).returncode == 0
    taken = tmp_path / "b"
    (taken / "x").mkdir(parents=True)
    with pytest.raises(BackupError, match="not empty"):
        backup(config, taken)
    with pytest.raises(BackupError, match="not a sandcat backup"):
        restore(config, taken)
    (taken / "x").rmdir()
    assert backup(config, taken).blobs == 0
    with pytest.raises(BackupError, match="exists"):
        restore(config, taken)
    postgres = load_config(env={"SANDCAT_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/d"})
    for run in (lambda: backup(postgres, taken), lambda: restore(postgres, taken),
                lambda: check(postgres)):  # fmt: skip
        with pytest.raises(ConfigError, match="pg_dump"):
            run()
    refused = sandcat("restore", str(taken), "--data-dir", str(data))
    assert refused.returncode == 1
    assert "restore into an empty data directory" in refused.stderr


def test_a_backup_and_its_restore_are_readable_by_the_server_user_only(tmp_path: Path) -> None:
    # The database holds password hashes and live codes: 0600 whatever the umask,
    # like everything else Sandcat writes (README, "Configuration").
    data, taken, restored = tmp_path / "data", tmp_path / "b", tmp_path / "restored"
    assert sandcat("migrate", "--data-dir", str(data)).returncode == 0
    previous = os.umask(0o022)
    try:
        backup(load_config(overrides={"server.data_dir": str(data)}), taken)
        restore(load_config(overrides={"server.data_dir": str(restored)}), taken)
    finally:
        os.umask(previous)
    for path in (taken / "sandcat.db", taken / "backup.json", restored / "sandcat.db"):
        assert path.stat().st_mode & 0o777 == 0o600, path
