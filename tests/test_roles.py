"""``sandcat serve --role``: the setting from flag, environment and TOML, the
refusal on SQLite, and what each role runs (docs/roles.md).

The roles at work, over real sockets on PostgreSQL, Kafka and Redis, are in
tests/cluster/test_roles.py; the leases of the cluster singletons in
tests/store/test_leases.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandcat.app import run_server
from sandcat.config import load_config
from sandcat.errors import ConfigError
from sandcat.roles import DUTIES, duties
from sandcat.supervisor import check
from tests.passwords import FAST_PASSWORDS
from tests.scene import make_config
from tests.test_cli import sandcat


@pytest.mark.parametrize("role", ["gateway", "api", "worker"])
def test_a_split_role_on_sqlite_is_refused_in_one_line_with_exit_2(
    tmp_path: Path, role: str
) -> None:
    result = sandcat("serve", "--role", role, "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sandcat: config server.role = '{role}': needs ")
    assert "postgresql://" in lines[0]
    assert not (tmp_path / "sandcat.db").exists(), "refused before opening anything"


def test_the_role_comes_from_the_environment_too(tmp_path: Path) -> None:
    result = sandcat("serve", "--data-dir", str(tmp_path), cwd=tmp_path, SANDCAT_ROLE="worker")
    assert result.returncode == 2
    assert "server.role = 'worker'" in result.stderr


def test_workers_of_a_split_role_on_sqlite_are_refused(tmp_path: Path) -> None:
    result = sandcat(
        "serve", "--workers", "2", "--role", "api", "--data-dir", str(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "server.role = 'api'" in result.stderr
    with pytest.raises(ConfigError, match=r"server\.role"):
        check(make_config(tmp_path, **{"server.role": "gateway"}), 2)


def test_an_unknown_role_is_a_usage_error(tmp_path: Path) -> None:
    result = sandcat("serve", "--role", "pusher", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "--role" in result.stderr
    with pytest.raises(ConfigError, match=r"server\.role"):
        load_config(env={"SANDCAT_ROLE": "pusher"})


def test_precedence_flag_over_environment_over_file(tmp_path: Path) -> None:
    file = tmp_path / "sandcat.toml"
    file.write_text('[server]\nrole = "api"\n')
    assert load_config(file=str(file)).server.role == "api"
    env = {"SANDCAT_ROLE": "gateway"}
    assert load_config(file=str(file), env=env).server.role == "gateway"
    flag = {"server.role": "worker"}
    assert load_config(file=str(file), env=env, overrides=flag).server.role == "worker"
    assert load_config().server.role == "all"


def test_all_is_the_default_and_runs_everything_on_sqlite(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert duties(config) == DUTIES["all"]
    assert (DUTIES["all"].gateway, DUTIES["all"].api, DUTIES["all"].worker) == (True, True, True)


def test_each_split_role_runs_one_part() -> None:
    assert [(r, d.gateway, d.api, d.worker) for r, d in DUTIES.items() if r != "all"] == [
        ("gateway", True, False, False),
        ("api", False, True, False),
        ("worker", False, False, True),
    ]
    # Token keys are refreshed where tokens are signed or checked.
    assert [DUTIES[r].token_keys for r in ("gateway", "api", "worker")] == [True, True, False]


async def test_run_server_refuses_a_split_role_on_sqlite(tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"server.role": "worker"})
    with pytest.raises(ConfigError, match=r"server\.role"):
        await run_server(config, passwords=FAST_PASSWORDS)
    assert not (tmp_path / "sandcat.db").exists(), "refused before opening anything"
