"""The ``sandcat`` command: the operations contract of README.md, "Configuration"."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from sandcat import __version__
from sandcat.cli import main
from sandcat.store.postgres.schema import MIGRATIONS
from tests.e2e.process import serve_process
from tests.postgres import free_port


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SANDCAT_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SANDCAT_"):
            monkeypatch.delenv(name)
    return monkeypatch


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}
    env.update(extra)
    return env


def _no_retry(folder: Path) -> Path:
    """A configuration file whose server exits at the first backend failure
    (``server.startup_timeout_s = 0``; tests/test_startup.py tests the retries)."""
    path = folder / "no-retry.toml"
    path.write_text("[server]\nstartup_timeout_s = 0\n")
    return path


def sandcat(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandcat", *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"sandcat {__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "serve" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("SANDCAT_WS_PORT", "abc", "server.ws_port"),
        ("SANDCAT_HTTP_PORT", "99999", "server.http_port"),
    ],
)
def test_a_bad_environment_value_exits_2_naming_the_key(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    value: str,
    key: str,
) -> None:
    clean_env.setenv(name, value)
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert key in err
    assert repr(value) in err
    assert "Traceback" not in err


def test_a_bad_config_file_exits_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "sandcat.toml"
    path.write_text("[server]\nws_prot = 1\n")
    clean_env.setenv("SANDCAT_CONFIG", str(path))
    assert main(["serve"]) == 2
    assert "server.ws_prot" in capsys.readouterr().err
    # --config wins over $SANDCAT_CONFIG.
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err


def test_a_bad_backend_url_exits_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = sandcat(
        "serve",
        "--data-dir",
        str(tmp_path / "data"),
        "--ws-port",
        "0",
        "--http-port",
        "0",
        cwd=tmp_path,
        SANDCAT_MONGO_URL="mongo://user:hunter22@x",
    )
    assert result.returncode == 2
    assert "backends.mongo_url" in result.stderr
    assert "'mongo://user:***@x'" in result.stderr
    assert "hunter22" not in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_mongodb_exits_1_with_a_message(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "sandcat.toml"
    # startup_timeout_s = 0: exit at the first failure (tests/test_startup.py: the retries).
    config.write_text("[server]\nstartup_timeout_s = 0\n[backends]\nmongo_timeout_s = 0.3\n")
    clean_env.setenv("SANDCAT_MONGO_URL", f"mongodb://127.0.0.1:{free_port()}/x")
    argv = ["serve", "--config", str(config), "--data-dir", str(tmp_path / "data")]
    assert main([*argv, "--ws-port", "0", "--http-port", "0"]) == 1
    assert "sandcat: storage unavailable: mongodb failed" in capsys.readouterr().err


def test_an_unreachable_redis_exits_1_with_a_message(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clean_env.setenv("SANDCAT_REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    argv = ["serve", "--config", str(_no_retry(tmp_path)), "--data-dir", str(tmp_path)]
    assert main([*argv, "--ws-port", "0", "--http-port", "0"]) == 1
    err = capsys.readouterr().err
    # One Redis client serves shared state, presence and broadcasts; it is opened
    # (and checked) with the stores, so its failure is the storage's.
    assert "sandcat: storage unavailable: redis unreachable" in err
    assert "Traceback" not in err


def test_an_unsupported_database_url_exits_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clean_env.setenv("SANDCAT_DATABASE_URL", "mysql://db/sandcat")
    assert main(["serve", "--data-dir", str(tmp_path), "--ws-port", "0", "--http-port", "0"]) == 2
    assert "backends.database_url" in capsys.readouterr().err


def test_an_unreachable_postgres_exits_1_with_a_message(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean_env.setenv("SANDCAT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/sandcat")
    argv = ["serve", "--config", str(_no_retry(tmp_path)), "--data-dir", str(tmp_path)]
    assert main([*argv, "--ws-port", "0", "--http-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "storage unavailable" in err
    assert "Traceback" not in err


def test_an_unopenable_database_exits_1_with_a_message(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "sandcat.db").write_bytes(b"not a database " * 100)
    # Not retried (a file on this machine, not a backend that comes back).
    assert main(["serve", "--data-dir", str(tmp_path), "--ws-port", "0", "--http-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "storage unavailable" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("setting", ["ws_port", "http_port"])
def test_a_port_in_use_exits_1_naming_the_port_and_the_setting(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, setting: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"ws_port": "0", "http_port": "0", setting: str(port)}
        code = main(
            [
                "serve",
                "--data-dir",
                str(tmp_path),
                "--ws-port",
                ports["ws_port"],
                "--http-port",
                ports["http_port"],
            ]
        )
    assert code == 1
    err = capsys.readouterr().err
    expected = f"cannot listen on 127.0.0.1:{port} (server.{setting}): address already in use"
    assert f"sandcat: cannot start: {expected}\n" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("setting", ["ws_port", "http_port"])
def test_a_port_in_use_under_workers_names_it_too(tmp_path: Path, setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flag = f"--{setting.replace('_', '-')}"
        result = sandcat(
            "serve",
            "--workers",
            "2",
            "--data-dir",
            str(tmp_path),
            flag,
            str(port),
            cwd=tmp_path,
            # Binding comes before any database work: the URL is never dialled.
            SANDCAT_DATABASE_URL=f"postgresql://x@127.0.0.1:{free_port()}/x",
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (server.{setting})" in result.stderr


async def test_a_second_server_on_one_sqlite_database_is_refused_but_admin_commands_run(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with serve_process(data) as first:
        second = await trio.to_thread.run_sync(
            lambda: sandcat(
                "serve", "--data-dir", str(data), "--ws-port", "0", "--http-port", "0", cwd=tmp_path
            )
        )
        assert second.returncode == 1
        assert (
            f"{data / 'sandcat.db'} is in use by another sandcat serve "
            f"(pid {first.process.pid}, lock {data / 'sandcat.db.lock'})"
        ) in second.stderr
        assert "Traceback" not in second.stderr
        migrated = await trio.to_thread.run_sync(
            lambda: sandcat("migrate", "--data-dir", str(data), cwd=tmp_path)
        )
        assert migrated.returncode == 0, migrated.stderr
        first.kill()  # the kernel lets go of the lock of a killed server
        await first.wait()
    async with serve_process(data) as third, httpx.AsyncClient() as http:
        assert (await http.get(f"{third.http_url}/healthz", timeout=10)).status_code == 200


def test_a_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    result = sandcat("migrate", cwd=tmp_path, SANDCAT_DATABASE_URL="sqlite:///db/chat.db")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db" / "chat.db").is_file()
    absolute = tmp_path / "db" / "abs.db"
    result = sandcat("migrate", cwd=tmp_path, SANDCAT_DATABASE_URL=f"sqlite:///{absolute}")
    assert result.returncode == 0, result.stderr
    assert absolute.is_file()


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_sqlite_url_in_a_missing_folder_is_a_startup_error_naming_it(
    tmp_path: Path, command: str
) -> None:
    result = sandcat(
        command,
        cwd=tmp_path,
        SANDCAT_DATABASE_URL="sqlite:///missing/chat.db",
        SANDCAT_WS_PORT="0",
        SANDCAT_HTTP_PORT="0",
        SANDCAT_DATA_DIR=str(tmp_path / "data"),
    )
    assert result.returncode == 2
    assert f"the folder {tmp_path / 'missing'} does not exist" in result.stderr
    assert "relative to the working directory" in result.stderr
    assert not (tmp_path / "missing").exists()


async def test_serve_listens_answers_healthz_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stderr = (tmp_path / "stderr.log").open("wb")
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "sandcat",
            "serve",
            "--data-dir",
            str(data),
            "--ws-port",
            "0",
            "--http-port",
            "0",
        ],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    try:
        assert process.stdout is not None
        with trio.fail_after(15):
            output = b""
            while b"\n" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, (tmp_path / "stderr.log").read_text()
                output += chunk
        line = output.decode().splitlines()[0]
        match = re.search(
            r"listening on ws://127\.0\.0\.1:(\d+)/ws and http://127\.0\.0\.1:(\d+)", line
        )
        assert match, line
        assert str(data.resolve()) in line
        ws_port, http_port = int(match[1]), int(match[2])
        assert ws_port > 0
        with trio.fail_after(10):
            async with httpx.AsyncClient(timeout=5) as http:
                reply = await http.get(f"http://127.0.0.1:{http_port}/healthz")
            assert reply.status_code == 200
            assert reply.json() == {"status": "ok"}
        with trio.fail_after(10):
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
        assert (data / "sandcat.db").exists()
        logged = (tmp_path / "stderr.log").read_text()
        assert "open files limit" in logged
        assert "startup objects moved out of the garbage collector's way" in logged
    finally:
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(5):
                await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()
        stderr.close()


def test_migrate_brings_sqlite_up_to_date(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--data-dir", str(tmp_path)]) == 0
    assert "sqlite schema at version" in capsys.readouterr().out
    assert (tmp_path / "sandcat.db").exists()


def test_migrate_prepares_the_mongodb_inbox_too(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mongo_url: str,
) -> None:
    clean_env.setenv("SANDCAT_MONGO_URL", mongo_url)
    assert main(["migrate", "--data-dir", str(tmp_path)]) == 0
    assert "mongodb inbox indexes ready" in capsys.readouterr().out
    clean_env.setenv("SANDCAT_MONGO_URL", f"mongodb://127.0.0.1:{free_port()}/x")
    config = tmp_path / "fast.toml"
    config.write_text("[backends]\nmongo_timeout_s = 0.3\n")
    assert main(["migrate", "--data-dir", str(tmp_path), "--config", str(config)]) == 1
    assert "storage unavailable" in capsys.readouterr().err


def test_migrate_applies_postgres_migrations_once(
    empty_postgres_url: str, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SANDCAT_DATABASE_URL", empty_postgres_url)
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert f"({', '.join(name for name, _ in MIGRATIONS)})" in out
    assert "0003_outbox.sql" in out
    assert main(["migrate"]) == 0
    assert "nothing to apply" in capsys.readouterr().out


def test_migrate_reports_bad_urls_and_unreachable_databases(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SANDCAT_DATABASE_URL", "mysql://x")
    assert main(["migrate", "--data-dir", str(tmp_path)]) == 2
    assert "database_url" in capsys.readouterr().err
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean_env.setenv("SANDCAT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/x")
    assert main(["migrate"]) == 1
    assert "storage unavailable" in capsys.readouterr().err
    clean_env.setenv("SANDCAT_POSTGRES_NONSENSE", "1")
    assert main(["migrate", "--config", str(tmp_path / "missing.toml")]) == 2


def test_serve_raises_the_open_files_soft_limit_to_the_hard_one(tmp_path: Path) -> None:
    # Every WebSocket is a file descriptor; 10,000 connections need more than a
    # typical soft limit of 1,024. (The port is taken so that serve exits at once.)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(512, hard)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = ["serve", "--data-dir", str(tmp_path), "--ws-port", port, "--http-port", "0"]
        done = subprocess.run(
            [sys.executable, "-m", "sandcat", *serve],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            preexec_fn=lower,
        )
    assert done.returncode == 1
    if low < hard:
        assert f"open files limit raised from {low} to {hard}" in done.stderr, done.stderr
    else:  # pragma: no cover - a machine whose hard limit is tiny
        assert "open files limit" in done.stderr


def test_rotate_token_key_in_process_makes_key_2_then_3(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token.key").write_bytes(b"L" * 32)
    assert main(["rotate-token-key", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "token key 2 signs from" in out
    assert "key 1 is accepted until" in out
    assert main(["rotate-token-key", "--data-dir", str(tmp_path)]) == 0
    assert "token key 3 signs from" in capsys.readouterr().out


def test_rotate_token_key_reports_bad_configuration_and_unreachable_databases(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SANDCAT_DATABASE_URL", "sqlite:///no/such/folder/x.db")
    assert main(["rotate-token-key", "--data-dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    clean_env.setenv("SANDCAT_DATABASE_URL", f"postgresql://x@127.0.0.1:{free_port()}/x")
    assert main(["rotate-token-key", "--data-dir", str(tmp_path)]) == 1
    assert "storage unavailable" in capsys.readouterr().err
