"""No input produces a 500 or HTML: every bad request gets a JSON error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandcat.config import HttpConfig
from tests.api.api_harness import Api, build_config, open_api

LOGIN = "/api/v1/auth/login"
JSON = {"Content-Type": "application/json"}


def assert_error(reply: object, status: int, code: str) -> dict[str, str]:
    import httpx

    assert isinstance(reply, httpx.Response)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error: dict[str, str] = reply.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"{'login': 'a'}",
        b"\xff\xfe\xfa",
        b'{"login": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"login": "\\ud800", "password": "x"}',
        b"1" * 5000,
    ],
)
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    reply = await api.client.post(LOGIN, content=raw, headers=JSON)
    assert_error(reply, 400, "bad_request")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"1", b"null", b"true"])
async def test_json_that_is_not_an_object_is_400(api: Api, raw: bytes) -> None:
    reply = await api.client.post(LOGIN, content=raw, headers=JSON)
    assert_error(reply, 400, "bad_request")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "login"),
        ({"login": "alice"}, "password"),
        ({"login": 1, "password": "x"}, "login"),
        ({"login": "alice", "password": {"a": 1}}, "password"),
        ({"login": "alice", "password": "x", "device": "has:colon"}, "device"),
        ({"login": "alice", "password": "x", "platform": ""}, "platform"),
    ],
)
async def test_missing_or_invalid_field_is_422_naming_it(
    api: Api, body: dict[str, object], field: str
) -> None:
    error = assert_error(await api.client.post(LOGIN, json=body), 422, "bad_request")
    assert error["field"] == field


async def test_empty_body_without_content_type_reads_as_empty_object(api: Api) -> None:
    error = assert_error(await api.client.post(LOGIN), 422, "bad_request")
    assert error["field"] == "login"


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}],
)
async def test_wrong_content_type_is_415(api: Api, headers: dict[str, str]) -> None:
    reply = await api.client.post(LOGIN, content=b'{"login": "a"}', headers=headers)
    assert_error(reply, 415, "bad_request")


async def test_body_without_content_type_is_415(api: Api) -> None:
    reply = await api.client.post(LOGIN, content=b'{"login": "a"}')
    assert_error(reply, 415, "bad_request")


@pytest.fixture
async def small_api(tmp_path: Path) -> AsyncIterator[Api]:
    async for harness in open_api(tmp_path, build_config(http=HttpConfig(max_body_bytes=1024))):
        yield harness


async def test_body_over_the_limit_is_413(small_api: Api) -> None:
    body = b'{"login": "' + b"a" * 2000 + b'", "password": "x"}'
    reply = await small_api.client.post(LOGIN, content=body, headers=JSON)
    assert_error(reply, 413, "too_large")


async def test_chunked_body_over_the_limit_is_413(small_api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"login": "'
        for _ in range(4):
            yield b"a" * 512
        yield b'"}'

    reply = await small_api.client.post(LOGIN, content=chunks(), headers=JSON)
    assert_error(reply, 413, "too_large")


async def test_body_at_the_limit_is_read(small_api: Api) -> None:
    body = b'{"login": "alice", "password": "' + b"p" * 900 + b'"}'
    reply = await small_api.client.post(LOGIN, content=body, headers=JSON)
    assert_error(reply, 401, "unauthorized")


# "/" is the web client; with http.web_client = false it is a 404 (tests/api/test_webclient.py).
@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/auth/login/extra"])
async def test_unknown_route_is_404_json(api: Api, path: str) -> None:
    assert_error(await api.client.get(path), 404, "not_found")


async def test_wrong_method_is_405_json(api: Api) -> None:
    reply = await api.client.get(LOGIN)
    assert_error(reply, 405, "bad_request")
    assert "POST" in reply.headers["Allow"]
    assert_error(await api.client.delete("/api/v1/users/me"), 405, "bad_request")


async def test_unexpected_exception_is_logged_and_answered_500_json(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> bool:
        raise RuntimeError("the readiness probe exploded")

    async for api in open_api(tmp_path, build_config(), ready=broken):
        with caplog.at_level(logging.ERROR):
            reply = await api.client.get("/healthz")
        error = assert_error(reply, 500, "internal")
        assert "exploded" not in error["message"]
        assert any(
            record.exc_info and "exploded" in str(record.exc_info[1]) for record in caplog.records
        )


async def test_bad_path_id_is_422(api: Api) -> None:
    alice = await api.user("alice")
    reply = await api.client.get("/api/v1/users/" + "x" * 65, headers=alice[1])
    assert assert_error(reply, 422, "bad_request")["field"] == "id"
