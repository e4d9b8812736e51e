"""Accounts, contacts and the inbox end to end on each backend (SQLite and
PostgreSQL): HTTP routes, NOTIFY pushes and inbox frames over a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandcat.protocol import InboxAck, InboxPull, Notify, Sync
from tests.gateway.raw import Connect, ok_body
from tests.scene import Api


@pytest.fixture(params=["sqlite", "postgres"])
def server_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "sqlite":
        return {}
    return {"backends.database_url": request.getfixturevalue("postgres_url")}


async def test_accounts_flow(api: Api, tmp_path: Path) -> None:
    http = api.http
    reply = await http.post(
        "/api/v1/auth/register",
        json={"username": "Dora", "password": "correct horse 1", "phone": "+1 555 123 4567",
              "email": "dora@example.com"},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    assert reply.json()["pending"] == ["email", "phone"]
    # The number is texted a code (DATA_DIR/texts); with it, it becomes a login.
    first = await http.post(
        "/api/v1/auth/login", json={"login": "dora", "password": "correct horse 1"}
    )
    texts = list((tmp_path / "data" / "texts").glob("*.txt"))
    code = re.findall(r"\b(\d{6})\b", texts[0].read_text())[0]
    added = await http.patch(
        "/api/v1/users/me",
        json={"phone": "+15551234567", "phone_code": code},
        headers={"Authorization": f"Bearer {first.json()['access_token']}"},
    )
    assert added.json()["user"]["phone"] == "+15551234567", added.text
    login = await http.post(
        "/api/v1/auth/login", json={"login": "+15551234567", "password": "correct horse 1"}
    )
    assert login.status_code == 200
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    patched = await http.patch(
        "/api/v1/users/me", json={"display_name": "Dora E", "birthday": "2000-02-29"}, headers=auth
    )
    assert patched.json()["user"]["birthday"] == "2000-02-29"
    other = await api.account()
    found = await http.get("/api/v1/users/search", params={"q": "dor"}, headers=api.auth(other))
    assert [u["username"] for u in found.json()["users"]] == ["dora"]
    sessions = await http.get("/api/v1/sessions", headers=auth)
    assert len(sessions.json()["sessions"]) == 2  # the first login added the number
    # Hostile text is refused at the edge, not by the database (PostgreSQL
    # text cannot hold NUL): the same answers on every backend.
    nul = await http.post("/api/v1/auth/login", json={"login": "do\u0000ra", "password": "x" * 9})
    assert (nul.status_code, nul.json()["error"]["field"]) == (422, "login")
    code = await http.post(
        "/api/v1/auth/codes", json={"email": "a\u0000@example.com", "purpose": "reset"}
    )
    assert (code.status_code, code.json()["error"]["field"]) == (422, "email")
    name = await http.patch("/api/v1/users/me", json={"region": "x\u0000"}, headers=auth)
    assert (name.status_code, name.json()["error"]["field"]) == (422, "region")
    assert (await http.post("/api/v1/auth/logout_all", headers=auth)).status_code == 204
    assert (await http.get("/api/v1/users/me", headers=auth)).status_code == 401


async def test_contacts_and_inbox_flow(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    conn = await connect(bob.token)
    request = await api.http.post(
        "/api/v1/friends/requests", json={"to": bob.id, "message": "hi"}, headers=api.auth(alice)
    )
    request_id = request.json()["request"]["id"]
    push = await conn.push()
    assert isinstance(push, Notify)
    assert (push.nseq, push.type, push.data["request"]) == (1, "friend.requested", request_id)
    accepted = await api.http.post(
        f"/api/v1/friends/requests/{request_id}/accept", json={}, headers=api.auth(bob)
    )
    assert accepted.status_code == 200
    await api.http.put(f"/api/v1/blocks/{alice.id}", headers=api.auth(bob))
    await api.http.delete(f"/api/v1/blocks/{alice.id}", headers=api.auth(bob))
    deleted = await api.http.delete(f"/api/v1/friends/{bob.id}", headers=api.auth(alice))
    assert deleted.status_code == 204
    push = await conn.push()
    assert isinstance(push, Notify)
    assert push.type == "friend.deleted"
    sync = (await api.http.get("/api/v1/friends/sync", headers=api.auth(bob))).json()
    assert [(f["id"], f.get("deleted")) for f in sync["friends"]] == [(alice.id, True)]
    page = ok_body(await conn.request(InboxPull(rid=conn.rid())))
    assert [n["type"] for n in page["notices"]] == ["friend.requested", "friend.deleted"]
    ok_body(await conn.request(InboxAck(rid=conn.rid(), upto=page["max_nseq"])))
    assert ok_body(await conn.request(InboxPull(rid=conn.rid(), after=0)))["notices"] == []
    assert ok_body(await conn.request(Sync(rid=conn.rid())))["inbox_max"] == 2
