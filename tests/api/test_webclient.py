"""The web client at ``/``: the shipped files, their security headers, the switch."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from quart_trio import QuartTrio

from sandcat.api.webclient import (
    STATIC_DIR,
    gateway_origin,
    load_assets,
    security_headers,
    webclient_blueprint,
)
from sandcat.app import Server
from sandcat.errors import ConfigError


def _client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10)


async def test_the_page_is_served_with_strict_headers(server: Server) -> None:
    async with _client(server) as http:
        page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    # The gateway is another port: its origin, and only it, joins 'self'.
    assert directives["connect-src"] == f"'self' ws://127.0.0.1:{server.ws_port}"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"


async def test_every_asset_the_page_names_is_served_and_none_is_inline(server: Server) -> None:
    class Names(HTMLParser):
        urls: list[str] = []
        inline: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "script" and not found.get("src"):
                self.inline.append(tag)
            if tag == "style" or "style" in found or any(k.startswith("on") for k in found):
                self.inline.append(tag)
            for key in ("src", "href"):
                if found.get(key):
                    self.urls.append(str(found[key]))

    async with _client(server) as http:
        names = Names()
        names.feed((await http.get("/")).text)
        assert names.inline == []
        assert sorted(names.urls) == [
            "/static/app.css",
            "/static/app.js",
            "/static/icon.svg",
            "/static/manifest.webmanifest",
        ]
        for url in names.urls:
            reply = await http.get(url)
            assert reply.status_code == 200, url
            assert reply.headers["x-content-type-options"] == "nosniff"
        script = await http.get("/static/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert len(script.content) > 1000


async def test_an_unchanged_asset_answers_304(server: Server) -> None:
    async with _client(server) as http:
        first = await http.get("/static/app.css")
        again = await http.get("/static/app.css", headers={"If-None-Match": first.headers["etag"]})
        other = await http.get("/static/app.css", headers={"If-None-Match": '"stale"'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/..%2F..%2Fconfig.py", "/static/", "/static/__init__.py"]
)
async def test_anything_else_is_404(server: Server, path: str) -> None:
    async with _client(server) as http:
        reply = await http.get(path)
    assert reply.status_code == 404


class TestSwitchedOff:
    @pytest.fixture
    def server_overrides(self) -> dict[str, object]:
        return {"http.web_client": False}

    async def test_the_page_is_404_and_the_api_still_answers(self, server: Server) -> None:
        async with _client(server) as http:
            assert (await http.get("/")).status_code == 404
            assert (await http.get("/static/app.js")).status_code == 404
            assert (await http.get("/healthz")).status_code == 200


class TestPublicGateway:
    @pytest.fixture
    def server_overrides(self) -> dict[str, object]:
        return {"server.public_ws_url": "wss://chat.example.org/ws"}

    async def test_connect_src_names_the_public_gateway(self, server: Server) -> None:
        async with _client(server) as http:
            policy = (await http.get("/")).headers["content-security-policy"]
        assert "connect-src 'self' wss://chat.example.org;" in policy


def test_the_environment_switches_it_off() -> None:
    from sandcat.config import load_config

    assert load_config(env={}).http.web_client is True
    assert load_config(env={"SANDCAT_WEB_CLIENT": "0"}).http.web_client is False


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("ws://127.0.0.1:50000/ws", "ws://127.0.0.1:50000"),
        ("wss://chat.example.org/ws", "wss://chat.example.org"),
        ("ws://[::1]:50000/ws", "ws://[::1]:50000"),
    ],
)
def test_gateway_origin(url: str, origin: str) -> None:
    assert gateway_origin(url) == origin


@pytest.mark.parametrize("url", ["http://host/ws", "/ws", "ws:///ws", ""])
def test_a_gateway_url_that_is_no_websocket_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="public_ws_url"):
        security_headers(url)


def test_the_package_ships_the_built_client() -> None:
    assets = load_assets()
    assert {"index.html", "app.js", "app.css"} <= set(assets)
    assert STATIC_DIR.is_relative_to(Path(__file__).resolve().parents[2] / "src" / "sandcat") or (
        STATIC_DIR.parts[-3:] == ("sandcat", "web", "static")
    )


async def test_without_built_files_the_page_is_404(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not served")
    (tmp_path / "sub.js").mkdir()
    assert load_assets(tmp_path) == {}
    assert load_assets(tmp_path / "missing") == {}
    app = QuartTrio("bare")
    app.register_blueprint(webclient_blueprint("ws://127.0.0.1:1/ws", load_assets(tmp_path)))
    reply = await app.test_client().get("/")
    assert reply.status_code == 404
    assert re.match(r"default-src 'none'", reply.headers["Content-Security-Policy"])
