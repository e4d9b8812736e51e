"""Logs you can ship (README.md, "Operating Sandcat"): a real server with
``--log-format json`` writes one JSON object a line, with the context of the
request or connection, an access line per HTTP request and INFO lines for logins,
sockets and rate-limit refusals; and a whole scripted session leaves no password,
token or code anywhere in its log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.client import HttpApi, HttpError, open_client
from sandcat.config import load_config
from sandcat.errors import ConfigError
from sandcat.logs import JsonFormatter, add_context, configure_logging, open_context
from tests.e2e.process import serve_process

PASSWORD = "correct horse 1"
NEW_PASSWORD = "battery staple 2"
WRONG = "wrong horse 99"


def _lines(output: bytes) -> list[dict[str, object]]:
    lines = []
    for raw in output.decode().splitlines():
        try:
            line = json.loads(raw)  # every line is one JSON object
        except ValueError as exc:
            raise AssertionError(f"not a JSON line: {raw!r}") from exc
        assert isinstance(line, dict), raw
        assert {"time", "level", "logger", "message"} <= set(line), raw
        lines.append(line)
    return lines


def _read_new(outbox: Path, seen: set[Path]) -> str:
    for path in sorted(outbox.glob("*.eml")):
        if path not in seen:
            seen.add(path)
            return path.read_text()
    return ""


async def _mail(outbox: Path, seen: set[Path]) -> str:
    """The next mail the outbox sender wrote (the postman writes it after the answer)."""
    for _ in range(500):
        if mail := _read_new(outbox, seen):
            return mail
        await trio.sleep(0.02)
    raise AssertionError(f"no mail in {outbox}")


def _code(mail: str) -> str:
    found = re.search(r"code is\s+(\d{6})", mail)
    assert found is not None, mail
    return found.group(1)


async def test_a_scripted_session_logs_json_with_context_and_no_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "sandcat.toml"
    # Two failures lock an account: the third attempt is a rate-limit refusal.
    config.write_text("[auth]\nlogin_failures = 2\n")
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, WRONG]
    seen: set[Path] = set()
    async with serve_process(
        data, "--log-format", "json", "--log-level", "INFO", "--config", str(config)
    ) as server:
        async with HttpApi(server.http_url) as api:
            ann = await api.register("ann", PASSWORD, email="ann@example.com")
            await api.register("bob", PASSWORD)
            for _ in range(2):
                with pytest.raises(HttpError) as bad:
                    await api.login("bob", WRONG)
                assert bad.value.status == 401
            with pytest.raises(HttpError) as locked:
                await api.login("bob", WRONG)
            assert locked.value.status == 429
            with pytest.raises(HttpError):
                await api.login("nobody", WRONG)
            login = await api.login("ann", PASSWORD, device="laptop")
            secrets += [login.tokens.access_token, login.tokens.refresh_token]
            renewed = await api.refresh(login.tokens.refresh_token)
            secrets += [renewed.access_token, renewed.refresh_token]
            async with httpx.AsyncClient() as raw:
                answer = await raw.get(
                    f"{server.http_url}/api/v1/users/{ann.id}?probe=1",
                    headers={"Authorization": f"Bearer {renewed.access_token}"},
                )
            assert answer.status_code == 200
            request_id = answer.headers["x-request-id"]
            # The address is added once the code mailed to it comes back.
            confirm = _code(await _mail(data / "outbox", seen))
            await api.update_me(renewed.access_token, email="ann@example.com", email_code=confirm)
            await api.request_code("ann@example.com", "reset")
            code = _code(await _mail(data / "outbox", seen))
            secrets += [confirm, code]
            await api.reset_password("ann@example.com", code, NEW_PASSWORD)
        async with open_client(
            server.http_url, login="ann", password=NEW_PASSWORD, device="phone"
        ) as client:
            secrets.append(await client.access_token())
        server.terminate()
        assert await server.wait() == 0
    text = server.output.decode()
    for secret in secrets:
        assert secret not in text, secret
    lines = _lines(server.output)
    by_event = {}
    for line in lines:
        by_event.setdefault(line.get("event"), []).append(line)
    assert len(by_event["login_failed"]) == 3
    assert [line["reason"] for line in by_event["login_refused"]] == ["locked"]
    assert {line["account"] for line in by_event["login_ok"]} == {ann.id}
    assert len(by_event["login_ok"]) == 2
    assert any(
        line.get("transport") == "http" and line["logger"] == "sandcat.ratelimit"
        for line in by_event["rate_limited"]
    )
    access = [line for line in lines if line["logger"] == "sandcat.access"]
    probe = [line for line in access if line.get("request_id") == request_id]
    assert len(probe) == 1
    assert probe[0]["route"] == "/api/v1/users/<user_id>"
    assert probe[0]["method"] == "GET"
    assert probe[0]["status"] == 200
    assert probe[0]["client"] == "127.0.0.1"
    assert probe[0]["user_id"] == ann.id
    assert probe[0]["bytes"] > 0
    assert isinstance(probe[0]["duration_ms"], float)
    assert "probe" not in json.dumps(access)  # no raw path, no query string
    (connect,) = by_event["ws_connect"]
    (close,) = by_event["ws_close"]
    assert connect["user_id"] == close["user_id"] == ann.id
    assert connect["connection_id"] == close["connection_id"]
    assert connect["device"] == "phone"
    assert close["closed_by"] == "client"
    assert close["close_code"] == 1000
    assert close["duration_s"] >= 0


async def test_the_access_log_can_be_switched_off(tmp_path: Path) -> None:
    async with serve_process(
        tmp_path / "data",
        "--log-format",
        "json",
        "--log-level",
        "INFO",
        env={"SANDCAT_ACCESS_LOG": "false"},
    ) as server:
        async with httpx.AsyncClient() as raw:
            answer = await raw.get(f"{server.http_url}/healthz")
        assert answer.status_code == 200
        assert answer.headers["x-request-id"]
        server.terminate()
        assert await server.wait() == 0
    assert not [line for line in _lines(server.output) if line["logger"] == "sandcat.access"]


def test_the_format_comes_from_toml_or_the_environment(tmp_path: Path) -> None:
    assert load_config().log.format == "text"
    assert load_config().log.access is True
    assert load_config(env={"SANDCAT_LOG_FORMAT": "json"}).log.format == "json"
    toml = tmp_path / "s.toml"
    toml.write_text('[log]\nformat = "json"\naccess = false\n')
    loaded = load_config(file=str(toml))
    assert (loaded.log.format, loaded.log.access) == ("json", False)
    with pytest.raises(ConfigError, match=r"log\.format"):
        load_config(env={"SANDCAT_LOG_FORMAT": "xml"})


def test_a_json_line_carries_context_extras_and_the_traceback() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("sandcat.x", logging.ERROR, __file__, 1, "hi %s", ("you",), None)
    record.status = 200
    record.route = object()
    with open_context(request_id="r1", user_id=""):
        add_context(user_id="u1", cid="")
        line = json.loads(formatter.format(record))
    assert line["message"] == "hi you"
    assert (line["request_id"], line["user_id"], line["status"]) == ("r1", "u1", 200)
    assert "cid" not in line
    assert isinstance(line["route"], str)
    add_context(user_id="outside")  # no context open: nothing to add to
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(formatter.format(record))["exception"]
    record.exc_info = None
    record.stack_info = "Stack (most recent call last)"
    assert json.loads(formatter.format(record))["exception"].startswith("Stack")


def test_configure_logging_leaves_a_foreign_root_handler_alone() -> None:
    root = logging.getLogger()
    before = list(root.handlers)  # pytest's capture handlers
    configure_logging("INFO", "json")
    assert root.handlers == before
