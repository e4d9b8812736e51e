"""Server administration against a real ``sandcat serve`` child process (SQLite):
the admin API's guard on every documented route, ``sandcat admin`` beside the
running server, disable closing live sockets with 4007, delete, and the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sandcat.api.openapi import ADMIN_PREFIX, openapi_document
from sandcat.protocol import Ok, Pull, Send
from tests.e2e.process import ServeProcess, serve_process
from tests.e2e.wire import Wire, open_wire
from tests.passwords import serve_environment
from tests.scene import Account, Api

#: The bound on closing a disabled user's sockets (README.md: within 1 s).
CLOSE_WITHIN_S = 1.0


def cli(*args: str, env: dict[str, str], stdin: str = "") -> Any:
    """``python -m sandcat admin ARGS --json`` as a child process; its JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "sandcat", "admin", *args, "--json"],
        env=serve_environment(
            {**{k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}, **env}
        ),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fill(path: str) -> str:
    """A documented path with made-up values for its parameters."""
    return path.replace("{user}", "someone").replace("{session}", "s1").replace("{id}", "g1")


async def wait_closed(wire: Wire, started: float) -> float:
    """Seconds from ``started`` until ``wire`` was closed (fails after CLOSE_WITHIN_S)."""
    with trio.fail_after(CLOSE_WITHIN_S * 5):
        while wire.closed is None:  # noqa: ASYNC110 - Wire sets a field, it has no event
            await trio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment choosing the database (the server's and the command's)."""
    if request.param == "sqlite":
        return {}
    return {"SANDCAT_DATABASE_URL": request.getfixturevalue("postgres_url")}


async def test_admin_api_and_cli_beside_a_running_server(
    tmp_path: Path, database: dict[str, str]
) -> None:
    data = tmp_path / "data"
    env = {"SANDCAT_DATA_DIR": str(data), "SANDCAT_HTTP_PORT": "1", **database}
    async with (
        serve_process(data, "--log-level", "INFO", env=database) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=30) as http,
    ):
        api = Api(http)
        root = await api.account("r1")
        plain = await api.account("p1")
        # Granting is the command line's alone; it works while the server runs.
        assert cli("grant-admin", root.username, env=env) == {"granted": True}
        await guard_on_every_admin_route(http, api, root, plain)
        await stats_count_the_running_instance(server, env)
        await disable_closes_sockets(server, http, api, root, env)
        await delete_keeps_history_readable(server, http, api, root)
        await audit_has_every_action(http, api, root, env)
    # Each API action has its INFO line (CLI ones log in the command's own process).
    log = server.output.decode()
    assert f"admin {root.id}: disable on " in log
    assert f"admin {root.id}: create-user on " in log
    assert "correct horse" not in log


async def guard_on_every_admin_route(
    http: httpx.AsyncClient, api: Api, root: Account, plain: Account
) -> None:
    """401 without a token, 403 for a plain user, on every documented admin operation
    (read from the OpenAPI document, so a new route cannot be missed)."""
    operations = [
        (method.upper(), fill(path))
        for path, item in openapi_document()["paths"].items()
        if path.startswith(ADMIN_PREFIX)
        for method in item
    ]
    assert len(operations) >= 14
    for method, path in operations:
        body = {} if method in ("POST", "PUT") else None
        anonymous = await http.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        refused = await http.request(method, path, json=body, headers=api.auth(plain))
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
    # No public route grants the role: a plain user stays plain.
    reply = await http.get("/api/v1/admin/users", params={"q": plain.id}, headers=api.auth(root))
    assert reply.json()["users"][0]["admin"] is False
    reply = await http.get("/api/v1/admin/stats", headers=api.auth(root))
    assert reply.status_code == 200
    assert reply.json()["connections_scope"] == "instance"


async def stats_count_the_running_instance(server: ServeProcess, env: dict[str, str]) -> None:
    """The command reads the connections from the configured instance's /metrics."""
    port = {"SANDCAT_HTTP_PORT": str(server.http_port)}
    stats = await trio.to_thread.run_sync(lambda: cli("stats", env={**env, **port}))
    assert (stats["connections"], stats["connections_scope"]) == (0, "instance")
    assert stats["users"] >= 2


async def disable_closes_sockets(
    server: ServeProcess, http: httpx.AsyncClient, api: Api, root: Account, env: dict[str, str]
) -> None:
    reply = await http.post(
        "/api/v1/admin/users",
        json={"username": "victim", "password": "correct horse 1", "display_name": "V"},
        headers=api.auth(root),
    )
    assert reply.status_code == 201, reply.text
    victim = await api.login("victim", "correct horse 1", "v1")
    await sessions_and_passwords(http, api, root, victim)
    victim = await api.login("victim", "correct horse 1", "v1")
    # Disabled from the command line, in another process: the socket closes within 1 s.
    async with open_wire(server.ws_url, victim.token, victim.device) as wire:
        done = await trio.to_thread.run_sync(lambda: cli("disable", "victim", env=env))
        # Measured from the command's exit: its interpreter start is not the server's part.
        assert await wait_closed(wire, time.monotonic()) < CLOSE_WITHIN_S
        assert len(done["ended_sessions"]) == 1
        assert wire.closed == 4007
    login = await http.post(
        "/api/v1/auth/login", json={"login": "victim", "password": "correct horse 1"}
    )
    assert login.status_code == 403, login.text
    refresh = await http.post("/api/v1/auth/refresh", json={"refresh_token": victim.refresh_token})
    assert refresh.status_code == 401
    reply = await http.post(f"/api/v1/admin/users/{victim.id}/enable", headers=api.auth(root))
    assert reply.json() == {"enabled": True}
    victim = await api.login("victim", "correct horse 1", "v1")
    # Disabled through the API: the same within 1 s.
    async with open_wire(server.ws_url, victim.token, victim.device) as wire:
        started = time.monotonic()
        reply = await http.post("/api/v1/admin/users/victim/disable", headers=api.auth(root))
        assert reply.status_code == 200, reply.text
        assert await wait_closed(wire, started) < CLOSE_WITHIN_S
        assert wire.closed == 4007
    reply = await http.get(f"/api/v1/users/{victim.id}", headers=api.auth(root))
    assert reply.status_code == 404  # a disabled account is not visible to users


async def sessions_and_passwords(
    http: httpx.AsyncClient, api: Api, root: Account, victim: Account
) -> None:
    auth = api.auth(root)
    reply = await http.get("/api/v1/admin/users/victim", headers=auth)
    assert reply.json()["user"]["id"] == victim.id
    reply = await http.get("/api/v1/admin/users/nobody", headers=auth)
    assert (reply.status_code, reply.json()["error"]["code"]) == (404, "not_found")
    reply = await http.get("/api/v1/admin/users", headers=auth)
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "q")
    other = await api.login("victim", "correct horse 1", "v2")
    reply = await http.get(f"/api/v1/admin/users/{victim.id}/sessions", headers=auth)
    sessions = reply.json()["sessions"]
    assert sorted(s["device"] for s in sessions) == ["v1", "v2"]
    first = next(s["id"] for s in sessions if s["device"] == "v1")
    reply = await http.delete(f"/api/v1/admin/users/{victim.id}/sessions/{first}", headers=auth)
    assert reply.json() == {"ended_sessions": [first]}
    reply = await http.delete(f"/api/v1/admin/users/{victim.id}/sessions/{first}", headers=auth)
    assert reply.status_code == 404
    assert (await http.get("/api/v1/users/me", headers=api.auth(victim))).status_code == 401
    assert (await http.get("/api/v1/users/me", headers=api.auth(other))).status_code == 200
    reply = await http.delete(f"/api/v1/admin/users/{victim.id}/sessions", headers=auth)
    assert len(reply.json()["ended_sessions"]) == 1
    assert (await http.get("/api/v1/users/me", headers=api.auth(other))).status_code == 401
    reply = await http.put(
        "/api/v1/admin/users/victim/password", json={"password": "short"}, headers=auth
    )
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "password")
    reply = await http.put(
        "/api/v1/admin/users/victim/password", json={"password": "a new password 2"}, headers=auth
    )
    assert reply.json() == {"ended_sessions": []}
    await api.login("victim", "a new password 2", "v3")
    reply = await http.put(
        "/api/v1/admin/users/victim/password", json={"password": "correct horse 1"}, headers=auth
    )
    assert len(reply.json()["ended_sessions"]) == 1
    reply = await http.post(
        "/api/v1/admin/broadcast", json={"text": "x", "level": "loud"}, headers=auth
    )
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "level")


async def delete_keeps_history_readable(
    server: ServeProcess, http: httpx.AsyncClient, api: Api, root: Account
) -> None:
    """A deleted user's messages stay in a peer's history; the peer's PULL still works."""
    leaving = await api.account("l1")
    peer = await api.account("k1")
    cid = await api.befriend(leaving, peer)
    crew = (await api.group(leaving, [peer], name="crew")).removeprefix("g:")
    solo = (await api.group(leaving, [], name="solo")).removeprefix("g:")
    async with open_wire(server.ws_url, leaving.token, leaving.device) as wire:
        for n in range(3):
            sent = await wire.call(
                Send(rid=wire.rid(), cid=cid, cmid=f"m{n}", kind=1, body={"text": f"hi {n}"})
            )
            assert isinstance(sent, Ok), sent
        started = time.monotonic()
        reply = await http.delete(f"/api/v1/admin/users/{leaving.id}", headers=api.auth(root))
        assert reply.status_code == 200, reply.text
        gone = reply.json()["user"]
        assert await wait_closed(wire, started) < CLOSE_WITHIN_S
    assert (gone["deleted"], gone["disabled"], gone["email"], gone["display_name"]) == (
        True,
        True,
        None,
        "Deleted user",
    )
    async with open_wire(server.ws_url, peer.token, peer.device) as wire:
        page = await wire.call(Pull(rid=wire.rid(), cid=cid, after=0))
        assert isinstance(page, Ok), page
        texts = [m["body"]["text"] for m in page.body["msgs"] if m["from"] == leaving.id]  # type: ignore[attr-defined, index]
        assert texts == ["hi 0", "hi 1", "hi 2"]
    # The group it owned passed to the next member; the one it was alone in is gone.
    group = (await http.get(f"/api/v1/groups/{crew}", headers=api.auth(peer))).json()["group"]
    assert group["owner"] == peer.id
    assert leaving.id not in {member["user"] for member in group["members"]}
    listed = await http.get("/api/v1/groups", headers=api.auth(peer))
    assert solo not in {g["id"] for g in listed.json()["groups"]}
    reply = await http.post(f"/api/v1/admin/groups/{solo}/dismiss", headers=api.auth(root))
    assert reply.status_code == 404
    reply = await http.post(f"/api/v1/admin/groups/{crew}/dismiss", headers=api.auth(root))
    assert reply.status_code == 204
    reply = await http.get(f"/api/v1/groups/{crew}", headers=api.auth(peer))
    assert reply.status_code == 404
    friends = await http.get("/api/v1/friends", headers=api.auth(peer))
    assert leaving.id not in {f["id"] for f in friends.json()["friends"]}
    login = await http.post(
        "/api/v1/auth/login", json={"login": leaving.username, "password": "correct horse 1"}
    )
    assert login.status_code in (401, 403)
    # The username stays reserved: old messages never point at someone new.
    taken = await http.post(
        "/api/v1/auth/register", json={"username": leaving.username, "password": "another pass 1"}
    )
    assert taken.status_code == 409
    again = await http.delete(f"/api/v1/admin/users/{leaving.id}", headers=api.auth(root))
    assert again.status_code == 409


async def audit_has_every_action(
    http: httpx.AsyncClient, api: Api, root: Account, env: dict[str, str]
) -> None:
    reply = await http.post(
        "/api/v1/admin/broadcast", json={"text": "maintenance at 02:00"}, headers=api.auth(root)
    )
    assert reply.status_code == 200, reply.text
    reply = await http.get("/api/v1/admin/audit", headers=api.auth(root))
    entries = reply.json()["entries"]
    seen = [(e["action"], e["actor"] == root.id, e["origin"]) for e in reversed(entries)]
    assert seen == [
        ("grant-admin", False, "cli"),
        ("create-user", True, "127.0.0.1"),
        ("revoke-sessions", True, "127.0.0.1"),
        ("revoke-sessions", True, "127.0.0.1"),
        ("set-password", True, "127.0.0.1"),
        ("set-password", True, "127.0.0.1"),
        ("disable", False, "cli"),
        ("enable", True, "127.0.0.1"),
        ("disable", True, "127.0.0.1"),
        ("delete", True, "127.0.0.1"),
        ("dismiss-group", True, "127.0.0.1"),
        ("broadcast", True, "127.0.0.1"),
    ]
    assert all(e["actor"].startswith("cli:") for e in entries if e["origin"] == "cli")
    listed = cli("audit", "--action", "disable", env=env)["entries"]
    assert [e["origin"] for e in listed] == ["127.0.0.1", "cli"]
    reply = await http.delete(f"/api/v1/admin/users/{root.id}/admin", headers=api.auth(root))
    assert reply.json() == {"revoked": True}
    reply = await http.get("/api/v1/admin/audit", headers=api.auth(root))
    assert reply.status_code == 403
