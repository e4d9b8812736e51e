"""The people in SDK tests: accounts, friendships and groups, made with the SDK's HttpApi."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sandcat.client import Client, HttpApi, Session, SessionOptions, open_client
from sandcat.protocol import Msg

PASSWORD = "correct horse 1"

_names = itertools.count(1)

#: Tests break the network on purpose; reconnect fast and keep trying.
_FAST_RECONNECTS = SessionOptions(backoff_min_s=0.05, backoff_max_s=0.3, reconnect_attempts=100)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    username: str
    token: str  # an access token for scene-setting HTTP calls


class Cast:
    """Makes people and their relationships on one running server."""

    def __init__(self, api: HttpApi, *, http_url: str, ws_url: str) -> None:
        self.api = api
        self.http_url = http_url
        self.ws_url = ws_url

    async def person(self, name: str | None = None) -> Person:
        username = f"{name or 'user'}{next(_names)}"
        user = await self.api.register(username, PASSWORD, display_name=username.title())
        login = await self.api.login(username, PASSWORD, device="setup", platform="test")
        assert login.user_id == user.id
        return Person(id=user.id, username=username, token=login.tokens.access_token)

    async def befriend(self, a: Person, b: Person) -> str:
        """Make ``a`` and ``b`` friends; returns their direct cid."""
        request = await self.api.request_friend(a.token, b.id)
        friend = await self.api.accept_friend(b.token, request.id)
        low, high = sorted((a.id, b.id))
        assert friend.cid == f"d:{low}:{high}", friend
        return friend.cid

    async def group(self, owner: Person, members: list[Person], name: str = "crew") -> str:
        group = await self.api.create_group(owner.token, name, [m.id for m in members])
        return group.cid

    @asynccontextmanager
    async def client(
        self,
        person: Person,
        device: str,
        *,
        ws_url: str | None = None,
        positions: Mapping[str, int] | None = None,
        options: SessionOptions | None = None,
    ) -> AsyncIterator[Client]:
        """``open_client`` for ``person`` on ``device``, reconnecting quickly."""
        async with open_client(
            self.http_url,
            login=person.username,
            password=PASSWORD,
            device=device,
            platform="test",
            ws_url=ws_url or self.ws_url,
            positions=positions,
            options=options or _FAST_RECONNECTS,
        ) as client:
            yield client


async def take(session: Session, count: int) -> list[Msg]:
    """The next ``count`` messages the session delivers."""
    return [await session.receive_message() for _ in range(count)]
