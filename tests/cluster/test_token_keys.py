"""A cluster agrees on its token key with no secret configured by hand.

Two ``sandcat serve`` processes started with only the documented environment
(``SANDCAT_DATABASE_URL`` for PostgreSQL, ``SANDCAT_REDIS_URL``), each with
its own data directory as separate hosts have: a token issued by one is
accepted by the other, and a logout on one closes the session's socket on the
other. ``sandcat rotate-token-key`` makes a new key that both pick up without
a restart while tokens of the old one keep working. A data directory an older
version left with its ``token.key`` keeps its tokens valid after the upgrade.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import trio
from trio_websocket import connect_websocket_url

from sandcat.clock import system_clock
from sandcat.domain.tokens import Tokens
from tests.e2e.process import serve_process
from tests.gateway.raw import TIMEOUT_S, Raw
from tests.scene import Account, Api
from tests.test_cli import child_env


def _me(http_url: str, token: str) -> int:
    reply = httpx.get(
        f"{http_url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return reply.status_code


async def _account(http_url: str, device: str = "phone") -> Account:
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
        return await Api(http).account(device)


async def _login(http_url: str, account: Account, device: str) -> Account:
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
        return await Api(http).login(account.username, account.password, device)


def _rotate(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandcat", "rotate-token-key", *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_two_instances_from_the_environment_share_tokens_and_logouts(
    tmp_path: Path, nursery: trio.Nursery, postgres_url: str, redis_url: str
) -> None:
    env = child_env(SANDCAT_DATABASE_URL=postgres_url, SANDCAT_REDIS_URL=redis_url)
    async with (
        serve_process(tmp_path / "a", env=env) as a,
        serve_process(tmp_path / "b", env=env) as b,
    ):
        alice = await _account(a.http_url)
        assert await trio.to_thread.run_sync(_me, b.http_url, alice.token) == 200
        with trio.fail_after(TIMEOUT_S):
            ws = await connect_websocket_url(nursery, b.ws_url, subprotocols=["sandcat.v1"])
        raw = Raw(ws)
        await raw.hello(alice.token, "phone")
        async with httpx.AsyncClient(base_url=a.http_url, timeout=10) as http:
            reply = await http.post(
                "/api/v1/auth/logout", headers={"Authorization": f"Bearer {alice.token}"}
            )
        assert reply.status_code == 204
        try:
            assert await raw.close_code() == 4007
        finally:
            # trio-websocket keeps its TCP socket when the server closed first.
            await ws._close_stream()
        assert await trio.to_thread.run_sync(_me, b.http_url, alice.token) == 401
    for name in ("a", "b"):
        assert not (tmp_path / name / "token.key").exists()


async def test_a_rotated_key_reaches_every_instance_and_old_tokens_keep_working(
    tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "sandcat.toml"
    config.write_text("[auth]\nkey_refresh_s = 0.2\n")
    env = child_env(SANDCAT_DATABASE_URL=postgres_url, SANDCAT_CONFIG=str(config))
    async with (
        serve_process(tmp_path / "a", env=env) as a,
        serve_process(tmp_path / "b", env=env) as b,
    ):
        alice = await _account(a.http_url)
        assert jwt.get_unverified_header(alice.token)["kid"] == "1"
        rotated = await trio.to_thread.run_sync(
            lambda: _rotate(SANDCAT_DATABASE_URL=postgres_url, SANDCAT_CONFIG=str(config))
        )
        assert rotated.returncode == 0, rotated.stderr
        assert "token key 2 signs from" in rotated.stdout
        assert "key 1 is accepted until" in rotated.stdout
        await trio.sleep(0.4 + 1.0)  # two refresh periods, and a margin for a loaded box
        tablet = await _login(b.http_url, alice, "tablet")
        assert jwt.get_unverified_header(tablet.token)["kid"] == "2"
        for instance in (a, b):
            for token in (alice.token, tablet.token):
                assert await trio.to_thread.run_sync(_me, instance.http_url, token) == 200


def test_rotation_with_a_configured_secret_is_refused(tmp_path: Path) -> None:
    result = _rotate("--data-dir", str(tmp_path), SANDCAT_TOKEN_SECRET="s" * 32)
    assert result.returncode == 2
    assert "auth.token_secret is set" in result.stderr


async def test_an_upgraded_data_dir_keeps_its_token_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    legacy = b"L" * 32
    (data / "token.key").write_bytes(legacy)
    async with serve_process(data) as server:
        alice = await _account(server.http_url)
        # A token as the older version signed it: the file's key, no kid.
        # The server signs with the file's key (adopted as key 1).
        claims = jwt.decode(alice.token, legacy, algorithms=["HS256"])
        assert jwt.get_unverified_header(alice.token)["kid"] == "1"
        old = Tokens(legacy, access_ttl_s=900, clock=system_clock).issue_access(
            user=claims["sub"], device=claims["dev"], session=claims["sid"]
        )
        assert "kid" not in jwt.get_unverified_header(old.token)
        assert await trio.to_thread.run_sync(_me, server.http_url, old.token) == 200
        forged = Tokens(b"F" * 32, access_ttl_s=900, clock=system_clock).issue_access(
            user=claims["sub"], device=claims["dev"], session=claims["sid"]
        )
        assert await trio.to_thread.run_sync(_me, server.http_url, forged.token) == 401
        # Admin commands run beside the server; the running server picks the key up.
        rotated = await trio.to_thread.run_sync(lambda: _rotate("--data-dir", str(data)))
        assert rotated.returncode == 0, rotated.stderr
    (data / "token.key").unlink()  # the key lives in the database now
    async with serve_process(data) as server:
        assert await trio.to_thread.run_sync(_me, server.http_url, alice.token) == 200
        assert await trio.to_thread.run_sync(_me, server.http_url, old.token) == 200
