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
from sandcat.errors import ConfigError, StoreUnavailable
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
    for run in (lambda: backup(postgres, taken), lambda: restore(postgres, taken)):
        with pytest.raises(ConfigError, match="pg_dump"):
            run()
    # check verifies PostgreSQL too: a database that does not answer is a clear error.
    with pytest.raises(StoreUnavailable):
        check(postgres)
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


async def test_check_verifies_a_postgresql_deployment(tmp_path: Path, postgres_url: str) -> None:
    """Schema version, seqs without holes and every referenced blob, on PostgreSQL."""
    import psycopg

    from sandcat.store.postgres.schema import MIGRATIONS as POSTGRES_MIGRATIONS

    data = tmp_path / "data"
    env = {"SANDCAT_DATABASE_URL": postgres_url}
    async with serve_process(data, env=env) as server:
        async with HttpApi(server.http_url) as api:
            for name in ("ann", "bob"):
                await api.register(name, PASSWORD)
            ann = await api.login("ann", PASSWORD)
            bob = await api.login("bob", PASSWORD)
            asked = await api.request_friend(ann.tokens.access_token, bob.user.id)
            friend = await api.accept_friend(bob.tokens.access_token, asked.id)
        async with open_client(server.http_url, login="ann", password=PASSWORD, device="a") as a:
            for n in range(3):
                await a.session.send(friend.cid, f"text {n}")
            sent = await a.send_file(friend.cid, b"bytes", content_type="text/plain", name="f.txt")
        server.terminate()
        assert await server.wait() == 0
    config = load_config(env=env, overrides={"server.data_dir": str(data)})
    report = await trio.to_thread.run_sync(check, config)
    assert report.problems == []
    assert report.schema_version == len(POSTGRES_MIGRATIONS)
    assert (report.conversations, report.messages, report.files) == (1, 4, 1)

    (data / "blobs" / "objects" / "u" / sent.file.id).unlink()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM messages WHERE cid = %s AND seq = 2", (friend.cid,))
    report = await trio.to_thread.run_sync(check, config)
    assert report.problems == [
        f"conversation {friend.cid}: seqs 1..4 but 3 messages (a hole)",
        f"file {sent.file.id}: its blob u/{sent.file.id} is missing",
    ]
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "sandcat", "check", "--data-dir", str(data)],
            env=serve_environment(
                {
                    **{k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")},
                    **env,
                }
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    )
    assert done.returncode == 1, done.stderr
    assert "problem: conversation" in done.stdout
    assert "FAILED: schema" in done.stdout


async def test_check_finds_blobs_in_s3(tmp_path: Path, s3_base_url: str) -> None:
    """With ``backends.s3_url`` the referenced blobs are looked up in the bucket."""
    from sandcat.app import Server, run_server
    from sandcat.services import open_blob_store
    from tests.blobs.conftest import fresh_bucket
    from tests.passwords import FAST_PASSWORDS
    from tests.scene import make_config

    config = make_config(tmp_path / "data", **{"backends.s3_url": s3_base_url + fresh_bucket()})
    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(
            lambda task_status: run_server(
                config, passwords=FAST_PASSWORDS, task_status=task_status
            )
        )
        url = f"http://127.0.0.1:{server.http_port}"
        async with HttpApi(url) as api:
            await api.register("ann", PASSWORD)
        async with open_client(url, login="ann", password=PASSWORD, device="a") as ann:
            group = await ann.api.create_group(await ann.access_token(), "g", [])
            sent = await ann.send_file(group.cid, b"in s3", content_type="text/plain", name="s.txt")
        server.shutdown()
    report = await trio.to_thread.run_sync(check, config)
    assert (report.problems, report.files) == ([], 1)
    blobs, _ = await open_blob_store(config)
    await blobs.delete(f"u/{sent.file.id}")
    report = await trio.to_thread.run_sync(check, config)
    assert report.problems == [f"file {sent.file.id}: its blob u/{sent.file.id} is missing"]
