"""``server.tls_cert_file`` / ``tls_key_file``: HTTPS and WSS on both listeners.

A self-signed certificate for 127.0.0.1 is made by the ``openssl`` command for
each test; clients trust exactly that certificate. A plain client on a TLS
port gets nowhere, and the server keeps serving.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import connect_websocket_url

from sandcat.app import Server, run_server
from sandcat.errors import ConfigError
from sandcat.gateway.tls import server_context
from sandcat.protocol import Ok, Ping, Pull, Send
from tests.gateway.raw import TIMEOUT_S, Raw
from tests.passwords import FAST_PASSWORDS
from tests.scene import Api, make_config


def make_certificate(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:  # pragma: no cover - every CI image has it
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


@pytest.fixture
async def tls_server(
    tmp_path: Path, nursery: trio.Nursery, certificate: tuple[Path, Path]
) -> AsyncIterator[Server]:
    cert, key = certificate
    config = make_config(
        tmp_path / "data",
        **{"server.tls_cert_file": str(cert), "server.tls_key_file": str(key)},
    )
    server: Server = await nursery.start(
        lambda task_status: run_server(config, passwords=FAST_PASSWORDS, task_status=task_status)
    )
    yield server
    server.shutdown()


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


async def test_https_and_wss_on_both_listeners(
    tls_server: Server, client_tls: ssl.SSLContext, nursery: trio.Nursery
) -> None:
    base = f"https://127.0.0.1:{tls_server.http_port}"
    async with httpx.AsyncClient(base_url=base, verify=client_tls, timeout=10) as http:
        assert (await http.get("/healthz")).status_code == 200
        api = Api(http)
        alice, bob = await api.account(), await api.account()
        cid = await api.befriend(alice, bob)
        login = await http.post(
            "/api/v1/auth/login",
            json={"login": alice.username, "password": alice.password, "device": "d2"},
        )
    ws_url = login.json()["ws_url"]
    assert ws_url == f"wss://127.0.0.1:{tls_server.ws_port}/ws"
    with trio.fail_after(TIMEOUT_S):
        ws = await connect_websocket_url(
            nursery, ws_url, ssl_context=client_tls, subprotocols=["sandcat.v1"]
        )
    raw = Raw(ws)
    try:
        await raw.hello(alice.token)
        assert isinstance(await raw.request(Ping(rid=raw.rid())), Ok)
        text = "x" * 15_000
        for n in range(40):
            sent = await raw.request(
                Send(rid=raw.rid(), cid=cid, cmid=f"m{n}", kind=1, body={"text": text})
            )
            assert isinstance(sent, Ok), sent
        # Replies of ~60 KB each: several TLS records, more than the kernel takes at once.
        texts: list[object] = []
        for after in range(0, 40, 4):
            reply = await raw.request(Pull(rid=raw.rid(), cid=cid, after=after, limit=4))
            assert isinstance(reply, Ok)
            messages = reply.body["msgs"]
            assert isinstance(messages, list)
            texts.extend(m["body"]["text"] for m in messages)
        assert texts == [text] * 40
    finally:
        await ws.aclose()


async def test_plain_clients_on_tls_ports_get_nowhere_and_the_server_keeps_serving(
    tls_server: Server, client_tls: ssl.SSLContext
) -> None:
    with pytest.raises(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=5) as plain:
            await plain.get(f"http://127.0.0.1:{tls_server.http_port}/healthz")
    stream = await trio.open_tcp_stream("127.0.0.1", tls_server.ws_port)
    async with stream:
        await stream.send_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        # The server closes (or resets) the socket: that was no TLS client hello.
        with trio.fail_after(TIMEOUT_S), contextlib.suppress(trio.BrokenResourceError):
            while await stream.receive_some(4096):
                pass
    base = f"https://127.0.0.1:{tls_server.http_port}"
    async with httpx.AsyncClient(verify=client_tls, timeout=10) as http:
        assert (await http.get(f"{base}/healthz")).status_code == 200


def test_the_tls_settings_are_checked_at_startup(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    assert server_context(str(cert), str(key)).minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ConfigError, match=r"server\.tls_key_file"):
        server_context(str(cert), "")
    with pytest.raises(ConfigError, match=r"server\.tls_cert_file"):
        server_context("", str(key))
    with pytest.raises(ConfigError, match=r"server\.tls_key_file.*no such file"):
        server_context(str(cert), str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"server\.tls_cert_file.*cannot load"):
        server_context(str(garbage), str(key))
