"""Every route of the OpenAPI document against the rules every route keeps:
401 without a valid token, 400 / 413 / 415 / 422 for bad bodies, JSON errors,
and no stalled keep-alive connection after an early answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import requests
import trio

from sandcat.api.openapi import openapi_document
from sandcat.api.schemas import BODIES
from sandcat.config import HttpConfig
from sandcat.store.sql.admin import SqlAdminStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.api.api_harness import SECRET, Api, api_in_thread, build_config, open_api

DOCUMENT = openapi_document()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
SECURED = [(m, p) for m, p, op in OPERATIONS if op["security"]]
# JSON bodies; uploads (raw or multipart) have their own tests.
WITH_BODY = [
    (m, p, op)
    for m, p, op in OPERATIONS
    if list(op.get("requestBody", {}).get("content", {})) == ["application/json"]
]


def concrete(path: str) -> str:
    return path.replace("{id}", "some-id")


def ids(cases: list[Any]) -> list[str]:
    return [f"{case[0]} {case[1]}" for case in cases]


async def admin_token(api: Api) -> str:
    """A server admin's token, so the admin routes check their bodies too."""
    ann = await api.register("ann")
    await SqlAdminStore(api.db, SQLITE).grant_admin(ann["id"], by="test", now_ms=1)
    return str((await api.login("ann"))["access_token"])


@pytest.fixture
async def token(api: Api) -> str:
    return await admin_token(api)


@pytest.fixture(scope="module")
def shared_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the 401 cases: they send no valid token, so they change nothing."""
    with api_in_thread(tmp_path_factory.mktemp("every-route"), build_config()) as url:
        yield url


@pytest.fixture
async def shared_client(shared_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), SECURED, ids=ids(SECURED))
async def test_every_secured_route_is_401_without_a_valid_token(
    shared_client: httpx.AsyncClient, method: str, path: str
) -> None:
    expired = jwt.encode(
        {"sub": "ann", "dev": "d", "sid": "s", "iat": 1, "exp": 2}, SECRET, algorithm="HS256"
    )
    forged = jwt.encode(
        {"sub": "ann", "dev": "d", "sid": "s", "iat": 1, "exp": 2**40}, b"x" * 32, "HS256"
    )
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YW5uOnB3"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
    ):
        reply = await shared_client.request(method, concrete(path), headers=headers, json={})
        assert reply.status_code == 401, (headers, reply.text)
        assert reply.json()["error"]["code"] == "unauthorized"
        assert reply.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "operation"), WITH_BODY, ids=ids(WITH_BODY))
async def test_every_body_is_checked_before_it_is_used(
    api: Api, token: str, method: str, path: str, operation: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {token}"} if operation["security"] else {}
    url = concrete(path)
    malformed = await api.client.request(
        method, url, content=b'{"a": ', headers={**auth, "Content-Type": "application/json"}
    )
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "bad_request")
    not_object = await api.client.request(method, url, json=[1], headers=auth)
    assert not_object.status_code == 400
    wrong_type = await api.client.request(
        method, url, content=b"a=1", headers={**auth, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    required = schema.get("required", [])
    if required:
        missing = await api.client.request(method, url, json={}, headers=auth)
        assert missing.status_code == 422, missing.text
        assert missing.json()["error"]["field"] in required
        wrong = await api.client.request(
            method, url, json={name: ["wrong type"] for name in required}, headers=auth
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.json()["error"]["field"] in required


@pytest.fixture
async def small_api(tmp_path: Path) -> AsyncIterator[Api]:
    async for harness in open_api(tmp_path, build_config(http=HttpConfig(max_body_bytes=1024))):
        yield harness


async def test_every_body_over_the_limit_is_413(small_api: Api) -> None:
    token = await admin_token(small_api)
    for method, path, operation in WITH_BODY:
        auth = {"Authorization": f"Bearer {token}"} if operation["security"] else {}
        reply = await small_api.client.request(
            method, concrete(path), json={"pad": "x" * 2048}, headers=auth
        )
        assert reply.status_code == 413, (method, path, reply.text)
        assert reply.json()["error"]["code"] == "too_large"


def test_every_documented_body_names_its_fields() -> None:
    for name, schema in BODIES.items():
        assert schema["type"] == "object", name
        assert set(schema.get("required", [])) <= set(schema["properties"]), name


async def test_unknown_ids_are_404(api: Api, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    for method, path in (
        ("GET", "/api/v1/users/nobody"),
        ("DELETE", "/api/v1/sessions/nobody"),
        ("DELETE", "/api/v1/friends/nobody"),
        ("PATCH", "/api/v1/friends/nobody"),
        ("POST", "/api/v1/friends/requests/nobody/accept"),
        ("POST", "/api/v1/friends/requests/nobody/reject"),
        ("POST", "/api/v1/friends/requests/nobody/cancel"),
        ("PUT", "/api/v1/blocks/nobody"),
    ):
        body = {"remark": "x"} if method == "PATCH" else {}
        reply = await api.client.request(method, path, json=body, headers=auth)
        assert (reply.status_code, reply.json()["error"]["code"]) == (404, "not_found"), path


async def test_an_early_answer_leaves_the_keep_alive_connection_usable(api: Api) -> None:
    # Regression (found by fuzz-api): an answer sent before the body was read
    # (405, the automatic OPTIONS answer, 401) left the body on the connection,
    # and the next request on it stalled. requests' keep-alive pool reproduces it.
    base = str(api.client.base_url).rstrip("/")
    body = {"login": "", "password": "x", "device": "0", "platform": ""}

    def session() -> list[int]:
        with requests.Session() as http:
            return [
                http.request(method, f"{base}/api/v1/auth/login", json=body, timeout=3).status_code
                for method in ("POST", "PATCH", "QUERY", "OPTIONS", "GET", "PATCH", "POST")
            ]

    statuses = await trio.to_thread.run_sync(session)
    assert statuses == [422, 405, 405, 200, 405, 405, 422]
