"""Logging in with GitHub, against a fake GitHub on loopback that checks what a
real one would (client credentials, the code, the PKCE verifier)."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trio
from quart import Response, request
from quart_trio import QuartTrio

from sandcat.api import serve_http
from sandcat.api.payload import json_response
from sandcat.config import OAuthConfig
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.api.api_harness import Api, build_config, open_api

START = "/api/v1/auth/oauth/github"
CALLBACK = "/api/v1/auth/oauth/github/callback"


@dataclass
class FakeGithub:
    """Codes the 'user' approved, mapped to the account GitHub will describe."""

    url: str = ""
    approved: dict[str, dict[str, Any]] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def approve(self, location: str, code: str, account: dict[str, Any]) -> str:
        """The user says yes on GitHub's page; the callback query GitHub redirects to."""
        query = parse_qs(urlsplit(location).query)
        assert query["client_id"] == ["client-1"]
        assert query["code_challenge_method"] == ["S256"]
        self.challenges[code] = query["code_challenge"][0]
        self.approved[code] = account
        return f"code={code}&state={query['state'][0]}"

    def app(self) -> QuartTrio:
        app = QuartTrio("fake-github")

        @app.post("/login/oauth/access_token")
        async def token() -> Response:
            form = await request.form
            code = form.get("code", "")
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                form.get("client_secret") != "secret-1"
                or code not in self.approved
                or self.challenges.get(code) != challenge
            ):
                return json_response({"error": "bad_verification_code"})
            access = f"gho_{code}"
            self.tokens[access] = self.approved.pop(code)
            return json_response({"access_token": access, "token_type": "bearer"})

        def account() -> dict[str, Any] | None:
            scheme, _, access = request.headers.get("Authorization", "").partition(" ")
            return self.tokens.get(access) if scheme == "Bearer" else None

        @app.get("/user")
        async def user() -> Response:
            found = account()
            if found is None:
                return json_response({"message": "Bad credentials"}, 401)
            return json_response({k: v for k, v in found.items() if k != "emails"})

        @app.get("/user/emails")
        async def emails() -> Response:
            found = account()
            return json_response(found["emails"] if found else [], 200 if found else 401)

        return app


@pytest.fixture
async def github(nursery: trio.Nursery) -> AsyncIterator[FakeGithub]:
    fake = FakeGithub()
    stop = trio.Event()
    port = await nursery.start(
        partial(serve_http, fake.app(), host="127.0.0.1", port=0, shutdown_trigger=stop.wait)
    )
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    stop.set()


def oauth_config(base: str, api_url: str | None = None) -> OAuthConfig:
    return OAuthConfig(
        github_client_id="client-1",
        github_client_secret="secret-1",
        github_redirect_url="http://127.0.0.1/api/v1/auth/oauth/github/callback",
        github_authorize_url=f"{base}/login/oauth/authorize",
        github_token_url=f"{base}/login/oauth/access_token",
        github_api_url=api_url or base,
        timeout_s=2,
    )


@pytest.fixture
async def api(tmp_path: Path, github: FakeGithub) -> AsyncIterator[Api]:
    async for harness in open_api(tmp_path, build_config(oauth=oauth_config(github.url))):
        yield harness


def octo(id_: int = 583231, login: str = "octocat", **extra: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "login": login,
        "name": "The Octocat",
        "avatar_url": "https://avatars.example/u/583231",
        "emails": [
            {"email": "octo@example.com", "primary": True, "verified": True},
            {"email": "other@example.com", "primary": False, "verified": True},
        ],
        **extra,
    }


async def log_in(api: Api, github: FakeGithub, code: str, account: dict[str, Any]) -> Any:
    start = await api.client.get(START, params={"device": "web-1", "platform": "web"})
    assert start.status_code == 302, start.text
    query = github.approve(start.headers["Location"], code, account)
    return await api.client.get(f"{CALLBACK}?{query}")


async def test_a_new_github_user_gets_an_account_and_a_session(
    api: Api, github: FakeGithub
) -> None:
    reply = await log_in(api, github, "c1", octo())
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["device"] == "web-1"
    assert body["user"]["username"] == "octocat"
    assert body["user"]["display_name"] == "The Octocat"
    assert body["user"]["email"] == "octo@example.com"
    me = await api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["user"]["id"] == body["user"]["id"]
    # The next GitHub login finds the same account.
    again = await log_in(api, github, "c2", octo(name="Renamed"))
    assert again.json()["user"]["id"] == body["user"]["id"]
    # Its password is unusable until reset.
    unusable = await api.client.post(
        "/api/v1/auth/login", json={"login": "octocat", "password": ""}
    )
    assert unusable.status_code == 401


async def test_a_verified_email_links_the_existing_account(api: Api, github: FakeGithub) -> None:
    reply = await api.client.post(
        "/api/v1/auth/register",
        json={"username": "octo", "password": "correct horse", "email": "octo@example.com"},
    )
    existing = reply.json()["user"]["id"]
    await api.confirm("octo", email="octo@example.com")
    assert (await log_in(api, github, "c1", octo())).json()["user"]["id"] == existing


async def test_an_unverified_email_links_nothing(api: Api, github: FakeGithub) -> None:
    reply = await api.client.post(
        "/api/v1/auth/register",
        json={"username": "octo", "password": "correct horse", "email": "octo@example.com"},
    )
    existing = reply.json()["user"]["id"]
    await api.confirm("octo", email="octo@example.com")
    sneaky = octo(emails=[{"email": "octo@example.com", "primary": True, "verified": False}])
    body = (await log_in(api, github, "c1", sneaky)).json()
    assert body["user"]["id"] != existing
    assert body["user"]["email"] is None


async def test_a_taken_username_gets_a_suffix(api: Api, github: FakeGithub) -> None:
    await api.register("octocat")
    body = (await log_in(api, github, "c1", octo(emails=[]))).json()
    assert body["user"]["username"].startswith("octocat_")


async def test_the_state_is_checked_and_single_use(api: Api, github: FakeGithub) -> None:
    start = await api.client.get(START)
    query = github.approve(start.headers["Location"], "c1", octo())
    forged = await api.client.get(f"{CALLBACK}?code=c1&state=made-up")
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "unauthorized")
    assert (await api.client.get(f"{CALLBACK}?{query}")).status_code == 200
    replay = await api.client.get(f"{CALLBACK}?{query}")
    assert replay.status_code == 401


async def test_a_state_expires(api: Api, github: FakeGithub) -> None:
    start = await api.client.get(START)
    query = github.approve(start.headers["Location"], "c1", octo())
    api.clock.advance(601)
    assert (await api.client.get(f"{CALLBACK}?{query}")).status_code == 401


async def test_a_refused_code_is_401(api: Api, github: FakeGithub) -> None:
    start = await api.client.get(START)
    query = github.approve(start.headers["Location"], "c1", octo())
    github.challenges["c1"] = "someone else's challenge"
    assert (await api.client.get(f"{CALLBACK}?{query}")).status_code == 401


async def test_a_disabled_account_cannot_come_back_through_github(
    api: Api, github: FakeGithub
) -> None:
    body = (await log_in(api, github, "c1", octo())).json()
    # (Disabling through the API needs a password, which this account has none of.)
    await SqlAccountStore(api.db, SQLITE).disable(body["user"]["id"], now_ms=api.clock.now_ms)
    assert (await log_in(api, github, "c2", octo())).status_code == 403


async def test_bad_input(api: Api) -> None:
    reply = await api.client.get(START, params={"device": "a b"})
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "device")
    reply = await api.client.get(f"{CALLBACK}?state=x")
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "code")


async def test_github_down_is_503(tmp_path: Path, github: FakeGithub) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = build_config(oauth=oauth_config(closed))
    async for api in open_api(tmp_path, config):
        start = await api.client.get(START)
        query = github.approve(start.headers["Location"], "c1", octo())
        reply = await api.client.get(f"{CALLBACK}?{query}")
        assert (reply.status_code, reply.json()["error"]["code"]) == (503, "unavailable")


async def test_not_configured_is_404(tmp_path: Path) -> None:
    async for api in open_api(tmp_path, build_config()):
        assert (await api.client.get(START)).status_code == 404
        assert (await api.client.get(f"{CALLBACK}?code=a&state=b")).status_code == 404
