"""Setting the scene for tests: server configuration, accounts, friends, groups."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from sandcat.config import Config, load_config

_names = itertools.count(1)


def make_config(data_dir: Path, **overrides: object) -> Config:
    values: dict[str, object] = {
        "server.data_dir": str(data_dir),
        "server.ws_port": 0,
        "server.http_port": 0,
        # Durability is tested by the crash test; elsewhere fsync only slows tests.
        "backends.sqlite_synchronous": "NORMAL",
    }
    values.update(overrides)
    return load_config(env={}, overrides=values)


@dataclass
class Account:
    id: str
    username: str
    password: str
    token: str
    refresh_token: str
    device: str


class Api:
    """A thin HTTP client for the routes tests need to set the scene."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def register(self, username: str | None = None, password: str = "correct horse 1") -> str:
        username = username or f"user{next(_names)}"
        reply = await self.http.post(
            "/api/v1/auth/register", json={"username": username, "password": password}
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["user"]["id"])

    async def login(self, username: str, password: str, device: str) -> Account:
        reply = await self.http.post(
            "/api/v1/auth/login",
            json={"login": username, "password": password, "device": device, "platform": "test"},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        return Account(
            id=body["user"]["id"],
            username=username,
            password=password,
            token=body["access_token"],
            refresh_token=body["refresh_token"],
            device=device,
        )

    async def account(self, device: str = "d1") -> Account:
        username = f"user{next(_names)}"
        await self.register(username)
        return await self.login(username, "correct horse 1", device)

    def auth(self, account: Account) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {account.token}"}

    async def befriend(self, a: Account, b: Account) -> str:
        """Make ``a`` and ``b`` friends; returns their direct cid."""
        reply = await self.http.post(
            "/api/v1/friends/requests", json={"to": b.id}, headers=self.auth(a)
        )
        assert reply.status_code == 201, reply.text
        request_id = reply.json()["request"]["id"]
        reply = await self.http.post(
            f"/api/v1/friends/requests/{request_id}/accept", json={}, headers=self.auth(b)
        )
        assert reply.status_code == 200, reply.text
        low, high = sorted((a.id, b.id))
        return f"d:{low}:{high}"

    async def group(self, owner: Account, members: list[Account], name: str = "g") -> str:
        reply = await self.http.post(
            "/api/v1/groups",
            json={"name": name, "members": [m.id for m in members]},
            headers=self.auth(owner),
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["group"]["cid"])
