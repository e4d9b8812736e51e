"""GET /api/v1/calls/turn: coturn REST credentials, checked by recomputing the HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.app import run_server
from tests.passwords import FAST_PASSWORDS
from tests.scene import Api, make_config

SECRET = "coturn-static-auth-secret"
URIS = "turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349"


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"calls.turn_secret": SECRET, "calls.turn_urls": URIS, "calls.turn_ttl_s": 600}


async def test_credentials_are_valid_for_coturn(api: Api) -> None:
    alice = await api.account()
    reply = await api.http.get("/api/v1/calls/turn", headers=api.auth(alice))

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["ttl"] == 600
    assert body["uris"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:5349",
    ]
    expiry, user = body["username"].split(":")
    assert user == alice.id
    assert abs(int(expiry) - (time.time() + 600)) < 5
    digest = hmac.new(SECRET.encode(), body["username"].encode(), hashlib.sha1).digest()
    assert body["credential"] == base64.b64encode(digest).decode()


async def test_credentials_need_a_bearer(api: Api) -> None:
    reply = await api.http.get("/api/v1/calls/turn")
    assert reply.status_code == 401
    reply = await api.http.get("/api/v1/calls/turn", headers={"Authorization": "Bearer nope"})
    assert reply.status_code == 401


async def test_without_a_turn_secret_the_route_is_not_found(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    config = make_config(tmp_path / "plain", **{"calls.turn_urls": URIS})
    server = await nursery.start(
        lambda task_status: run_server(config, passwords=FAST_PASSWORDS, task_status=task_status)
    )
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.http_port}", timeout=10
    ) as http:
        api = Api(http)
        alice = await api.account()
        reply = await http.get("/api/v1/calls/turn", headers=api.auth(alice))
    server.shutdown()
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"
