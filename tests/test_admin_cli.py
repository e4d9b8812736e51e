"""``sandcat admin …`` against SQLite and PostgreSQL, with no server running
(tests/e2e/test_admin.py runs it beside a live server)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sandcat.cli import main
from tests.passwords import FAST_PASSWORDS

PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", "postgres"])
def admin_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[str]:
    """The flags every ``sandcat admin`` call of a test takes (one fresh database)."""
    for name in list(os.environ):
        if name.startswith("SANDCAT_"):
            monkeypatch.delenv(name)
    if request.param == "postgres":
        monkeypatch.setenv("SANDCAT_DATABASE_URL", request.getfixturevalue("postgres_url"))
    # No instance listens here: stats must say connections are unknown.
    monkeypatch.setenv("SANDCAT_HTTP_PORT", "1")
    return ["--data-dir", str(tmp_path / "data")]


def admin(
    flags: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, Any, str]:
    """Run ``sandcat admin ARGS --json``: exit status, the JSON it printed, stderr."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["admin", *args, *flags, "--json"], passwords=FAST_PASSWORDS)
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def test_create_lookup_grant_disable_and_audit(
    admin_env: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = lambda *args, **kw: admin(admin_env, capsys, monkeypatch, *args, **kw)  # noqa: E731
    code, out, _ = run(
        "create-user", "Alice", "--email", "A@Example.com", "--email-verified",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0
    alice = out["user"]
    assert (alice["username"], alice["email"], alice["admin"]) == ("alice", "a@example.com", False)
    # An unverified email is not stored (the user proves it with the emailed code).
    code, out, _ = run(
        "create-user", "bob", "--email", "b@example.com", "--password-stdin", stdin=PASSWORD
    )
    assert code == 0
    assert out["user"]["email"] is None
    bob = out["user"]["id"]
    for query in (alice["id"], "ALICE", "a@example.com"):
        code, out, _ = run("lookup", query)
        assert [user["id"] for user in out["users"]] == [alice["id"]]
    assert run("lookup", "nobody")[1] == {"users": []}
    code, _, err = run("create-user", "alice", "--password-stdin", stdin=PASSWORD)
    assert code == 1
    assert "taken" in err
    code, _, err = run("create-user", "x", "--password-stdin", stdin=PASSWORD)
    assert code == 1
    assert "username" in err
    assert run("grant-admin", "alice")[1] == {"granted": True}
    assert run("grant-admin", "alice")[1] == {"granted": False}
    assert run("lookup", "alice")[1]["users"][0]["admin"] is True
    assert run("disable", bob)[1] == {"ended_sessions": []}
    assert run("lookup", "bob")[1]["users"][0]["disabled"] is True
    assert run("enable", "bob")[1] == {"enabled": True}
    assert run("enable", "bob")[1] == {"enabled": False}
    assert run("revoke-admin", "alice")[1] == {"revoked": True}
    code, _, err = run("disable", "nobody")
    assert code == 1
    assert "no user 'nobody'" in err
    code, out, _ = run("audit")
    assert [(e["action"], e["actor"].startswith("cli:"), e["origin"]) for e in out["entries"]] == [
        (action, True, "cli")
        for action in (
            "revoke-admin", "enable", "enable", "disable", "grant-admin", "grant-admin",
            "create-user", "create-user",
        )
    ]  # fmt: skip
    assert out["entries"][3]["target"] == bob
    code, out, _ = run("audit", "--action", "disable", "--limit", "5")
    assert [e["target"] for e in out["entries"]] == [bob]
    assert run("audit", "--since", "2999-01-01")[1] == {"entries": []}
    code, _, err = run("audit", "--since", "yesterday")
    assert code == 1
    assert "--since" in err
    code, _, err = run("audit", "--limit", "0")
    assert code == 1
    assert "limit" in err


def test_stats_sessions_broadcast_and_text_output(
    admin_env: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = lambda *args, **kw: admin(admin_env, capsys, monkeypatch, *args, **kw)  # noqa: E731
    run("create-user", "carol", "--password-stdin", stdin=PASSWORD)
    code, out, _ = run("stats", "--days", "3")
    assert code == 0
    assert (out["users"], out["active_sessions"], out["messages"]) == (1, 0, 0)
    assert (out["connections"], out["connections_scope"]) == (None, "unknown")
    assert len(out["sends_per_day"]) == 3
    assert run("broadcast", "maintenance at 02:00")[1] == {"users": 1}
    code, out, _ = run("sessions", "carol")
    assert out["sessions"] == []
    assert out["user"]["username"] == "carol"
    assert run("revoke-sessions", "carol")[1] == {"ended_sessions": []}
    code, _, err = run("revoke-sessions", "carol", "--session", "nope")
    assert code == 1
    assert "no such session" in err
    code, _, err = run("dismiss-group", "nogroup")
    assert code == 1
    assert "no such group" in err
    code, _, err = run("set-password", "carol", "--password-stdin", stdin="short")
    assert code == 1
    assert "password" in err
    assert run("set-password", "carol", "--password-stdin", stdin=PASSWORD + "!")[1] == {
        "user": "carol",
        "ended_sessions": [],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["admin", "stats", *admin_env]) == 0
    text = capsys.readouterr().out
    assert "users: 1 (0 disabled, 0 deleted)" in text
    assert "connections: unknown" in text
    assert main(["admin", "audit", "--action", "broadcast", *admin_env]) == 0
    assert "broadcast  *  from cli  (1 users, 20 characters)" in capsys.readouterr().out


def test_text_output_prompted_passwords_and_delete(
    admin_env: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = iter([PASSWORD, PASSWORD, PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))

    def text(*args: str) -> tuple[int, str]:
        code = main(["admin", *args, *admin_env], passwords=FAST_PASSWORDS)
        out, err = capsys.readouterr()
        return code, out + err

    code, out = text("create-user", "dave", "--display-name", "Dave D")
    assert code == 0
    assert out.startswith("created ")
    assert "dave  'Dave D'  email=-" in out
    code, out = text("set-password", "dave")
    assert code == 1
    assert "the two passwords differ" in out
    assert text("grant-admin", "dave")[1] == "grant-admin: done\n"
    assert text("grant-admin", "dave")[1] == "grant-admin: nothing to do\n"
    assert "[admin]" in text("lookup", "dave")[1]
    assert text("lookup", "nobody")[1] == "no such user\n"
    assert "no live sessions" in text("sessions", "dave")[1]
    assert text("disable", "dave")[1] == "disable: done, 0 sessions ended\n"
    assert "[admin, disabled]" in text("lookup", "dave")[1]
    assert text("broadcast", "hello", "--level", "warning")[1] == (
        "broadcast: notice posted to 1 users\n"
    )
    code, out = text("delete", "dave")
    assert code == 0
    assert "Deleted user" in out
    assert "[disabled, deleted]" in out
    code, out = text("enable", "dave")
    assert code == 1
    assert "the account is deleted" in out
    assert "delete  " in text("audit", "--action", "delete")[1]
    assert text("audit", "--actor", "nobody")[1] == "no audit entries\n"


def test_a_missing_database_is_refused_but_the_first_user_can_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SANDCAT_"):
            monkeypatch.delenv(name)
    flags = ["--data-dir", str(tmp_path / "typo")]
    assert main(["admin", "lookup", "alice", *flags]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD))
    args = ["admin", "create-user", "alice", "--password-stdin", *flags]
    assert main(args, passwords=FAST_PASSWORDS) == 0
    assert main(["admin", "lookup", "alice", *flags]) == 0
    assert "alice" in capsys.readouterr().out


def test_an_unopenable_database_exits_1_and_a_bad_config_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SANDCAT_"):
            monkeypatch.delenv(name)
    (tmp_path / "sandcat.db").write_bytes(b"not a database " * 100)
    assert main(["admin", "stats", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "storage unavailable" in err
    assert "Traceback" not in err
    monkeypatch.setenv("SANDCAT_DATABASE_URL", "mysql://db/sandcat")
    assert main(["admin", "stats", "--data-dir", str(tmp_path)]) == 2
    assert "backends.database_url" in capsys.readouterr().err


def test_an_id_that_starts_with_a_dash_is_an_argument() -> None:
    """One generated id in 64 starts with ``-`` (sandcat.ids.new_id): argparse would
    take ``disable -AbCdEfGhIjKlMnO`` for an unknown option and exit 2."""
    from sandcat.cli import _parser

    args = _parser().parse_args(["admin", "disable", "-AbCdEfGhIjKlMnO", "--json"])
    assert (args.action, args.user, args.json) == ("disable", "-AbCdEfGhIjKlMnO", True)
    args = _parser().parse_args(
        ["admin", "revoke-sessions", "--session", "--bCdEfGhIjKlMnO", "-AbCdEfGhIjKlMnO"]
    )
    assert (args.user, args.session) == ("-AbCdEfGhIjKlMnO", "--bCdEfGhIjKlMnO")
    args = _parser().parse_args(["admin", "create-user", "x", "--password-stdin"])
    assert args.password_stdin is True
    with pytest.raises(SystemExit):
        _parser().parse_args(["admin", "disable", "--no-such-flag"])
