"""Setting up the accounts a scenario needs, over the public HTTP API.

Registration and login each cost one argon2id hash (~30 ms of server CPU at
the production parameters). The bench does not lower that cost — there is no
bench-only switch in the server — it runs them concurrently (bounded) and
counts the setup time apart from the measured phase.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import trio

_PASSWORD = "bench password 1"  # noqa: S105 - throwaway accounts on a bench server
#: Concurrent setup requests: enough to keep argon2 busy on every server core.
_SETUP_CONCURRENCY = 8
_runs = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    username: str
    token: str


def direct_cid(a: Member, b: Member) -> str:
    low, high = sorted((a.id, b.id))
    return f"d:{low}:{high}"


class Population:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._prefix = f"b{trio.current_time():.0f}x{next(_runs)}"
        self._names = itertools.count(1)

    async def _post(self, path: str, body: dict[str, object], token: str | None = None) -> object:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        reply = await self._http.post(path, json=body, headers=headers)
        if reply.status_code >= 300:
            raise RuntimeError(f"POST {path}: {reply.status_code} {reply.text[:200]}")
        return reply.json()

    async def _member(self) -> Member:
        username = f"{self._prefix}u{next(self._names)}"
        await self._post("/api/v1/auth/register", {"username": username, "password": _PASSWORD})
        body = await self._post(
            "/api/v1/auth/login",
            {"login": username, "password": _PASSWORD, "device": "setup", "platform": "bench"},
        )
        assert isinstance(body, dict)
        return Member(id=body["user"]["id"], username=username, token=body["access_token"])

    async def members(self, count: int) -> list[Member]:
        """Register and log in ``count`` new users, concurrently."""
        found: list[Member | None] = [None] * count
        await _each(range(count), lambda i: self._put(found, i))
        return [m for m in found if m is not None]

    async def _put(self, found: list[Member | None], index: int) -> None:
        found[index] = await self._member()

    async def befriend(self, a: Member, b: Member) -> str:
        """Make ``a`` and ``b`` friends; their direct cid."""
        body = await self._post("/api/v1/friends/requests", {"to": b.id}, a.token)
        assert isinstance(body, dict)
        await self._post(f"/api/v1/friends/requests/{body['request']['id']}/accept", {}, b.token)
        return direct_cid(a, b)

    async def befriend_all(self, pairs: list[tuple[Member, Member]]) -> list[str]:
        cids = [""] * len(pairs)

        async def one(index: int) -> None:
            cids[index] = await self.befriend(*pairs[index])

        await _each(range(len(pairs)), one)
        return cids

    async def group(self, owner: Member, members: list[Member]) -> str:
        """A group of ``owner`` and ``members`` (befriended with the owner first); its cid."""
        await self.befriend_all([(owner, member) for member in members])
        body = await self._post(
            "/api/v1/groups", {"name": "bench", "members": [m.id for m in members]}, owner.token
        )
        assert isinstance(body, dict)
        return str(body["group"]["cid"])


async def _each(items: range, fn: Callable[[int], Awaitable[None]]) -> None:
    limiter = trio.CapacityLimiter(_SETUP_CONCURRENCY)

    async def run(item: int) -> None:
        async with limiter:
            await fn(item)

    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(run, item)
