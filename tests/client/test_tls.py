"""The SDK over TLS (``server.tls_cert_file``): HTTPS and WSS with a private CA,
given to it as ``SessionOptions.tls`` / ``HttpApi(tls=...)``."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.client import HttpApi, SessionOptions, open_client
from tests.client.cast import PASSWORD
from tests.gateway.test_tls import make_certificate
from tests.passwords import FAST_PASSWORDS
from tests.scene import make_config


@pytest.fixture
async def tls_server(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Server, Path]]:
    cert, key = make_certificate(tmp_path)
    config = make_config(
        tmp_path / "data",
        **{"server.tls_cert_file": str(cert), "server.tls_key_file": str(key)},
    )
    server: Server = await nursery.start(
        lambda task_status: run_server(config, passwords=FAST_PASSWORDS, task_status=task_status)
    )
    yield server, cert
    server.shutdown()


async def test_the_sdk_talks_https_and_wss_to_a_private_ca(
    tls_server: tuple[Server, Path],
) -> None:
    server, cert = tls_server
    trusted = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{server.http_port}"
    options = SessionOptions(tls=trusted)
    with trio.fail_after(20):
        async with HttpApi(url, tls=trusted) as api:
            for name in ("ann", "bob"):
                await api.register(name, PASSWORD)
        async with (
            open_client(url, login="ann", password=PASSWORD, device="d", options=options) as ann,
            open_client(url, login="bob", password=PASSWORD, device="d", options=options) as bob,
        ):
            asked = await ann.api.request_friend(await ann.access_token(), bob.user_id)
            friend = await bob.api.accept_friend(await bob.access_token(), asked.id)
            await ann.session.send(friend.cid, "over tls")
            assert (await bob.session.receive_message()).body == {"text": "over tls"}


async def test_without_the_ca_the_certificate_is_refused(tls_server: tuple[Server, Path]) -> None:
    server, _ = tls_server
    async with HttpApi(f"https://127.0.0.1:{server.http_port}") as api:
        with pytest.raises(httpx.ConnectError):
            await api.health()
