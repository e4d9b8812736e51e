"""The JSON HTTP API (PROTOCOL.md §5) over ``httpx.AsyncClient``.

`HttpApi` covers what a chat client needs to get going: register, log in,
refresh and log out, and the social calls that make conversations (friends,
groups). Results are the API's JSON objects, except tokens, which get a
type because the SDK uses them itself. Every call has a deadline
(``timeout_s``); an error answer raises `HttpError` with the wire code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from .errors import HttpError

__all__ = ["HttpApi", "Login", "Tokens"]

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tokens:
    """An access/refresh token pair; ``expires_at`` is the access token's
    expiry in ``time.time()`` seconds."""

    access_token: str
    refresh_token: str
    expires_at: float

    @classmethod
    def from_json(cls, body: JSON) -> Tokens:
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=time.time() + float(body["expires_in"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """A successful login: tokens, the user object, and where to connect."""

    tokens: Tokens
    user: JSON
    ws_url: str

    @property
    def user_id(self) -> str:
        return str(self.user["id"])


class HttpApi:
    """A client of one Sandcat server's JSON API.

    Args:
        base_url: the HTTP origin, e.g. ``http://127.0.0.1:50001``.
        timeout_s: deadline for each request.
        transport: an ``httpx`` transport to use instead of the network.

    Use it as an async context manager, or call `aclose` when done.
    Authenticated calls take the access token to present.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        await self._http.aclose()

    # -- accounts ------------------------------------------------------------------------

    async def register(
        self, username: str, password: str, *, display_name: str | None = None
    ) -> JSON:
        """Create an account; returns the new user object."""
        body: JSON = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        return dict((await self._request("POST", "/auth/register", json=body))["user"])

    async def login(
        self, login: str, password: str, *, device: str | None = None, platform: str | None = None
    ) -> Login:
        """Log in by username, email or phone."""
        body: JSON = {"login": login, "password": password}
        if device is not None:
            body["device"] = device
        if platform is not None:
            body["platform"] = platform
        reply = await self._request("POST", "/auth/login", json=body)
        return Login(
            tokens=Tokens.from_json(reply), user=dict(reply["user"]), ws_url=str(reply["ws_url"])
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        """Trade a refresh token for a new pair (the old refresh token stops working)."""
        reply = await self._request("POST", "/auth/refresh", json={"refresh_token": refresh_token})
        return Tokens.from_json(reply)

    async def logout(self, token: str) -> None:
        """End the session of ``token``; its sockets are closed with 4007."""
        await self._request("POST", "/auth/logout", token=token)

    async def me(self, token: str) -> JSON:
        return dict((await self._request("GET", "/users/me", token=token))["user"])

    # -- friends and groups --------------------------------------------------------------

    async def request_friend(self, token: str, to: str, *, message: str | None = None) -> JSON:
        """Ask user ``to`` to be friends; returns the request (with ``id``)."""
        body: JSON = {"to": to}
        if message is not None:
            body["message"] = message
        reply = await self._request("POST", "/friends/requests", json=body, token=token)
        return dict(reply["request"])

    async def accept_friend(self, token: str, request_id: str) -> JSON:
        """Accept a friend request; returns the new friend (with the direct ``cid``)."""
        reply = await self._request(
            "POST", f"/friends/requests/{request_id}/accept", json={}, token=token
        )
        return dict(reply["friend"])

    async def friends(self, token: str) -> list[JSON]:
        return list((await self._request("GET", "/friends", token=token))["friends"])

    async def create_group(self, token: str, name: str, members: list[str]) -> JSON:
        """Create a group with the caller and ``members``; returns it (``id``, ``cid``)."""
        body = {"name": name, "members": members}
        return dict((await self._request("POST", "/groups", json=body, token=token))["group"])

    # -- transport -----------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, json: JSON | None = None, token: str | None = None
    ) -> JSON:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        response = await self._http.request(method, path, json=json, headers=headers)
        if response.status_code == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict):
                raise HttpError(response.status_code, "internal", response.text[:200])
            raise HttpError(response.status_code, str(error["code"]), str(error["message"]))
        if not isinstance(body, dict):
            raise HttpError(response.status_code, "internal", "reply is not a JSON object")
        return body
