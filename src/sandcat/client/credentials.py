"""Where a session gets access tokens, and how it renews them.

Access tokens are short-lived (protocol/SPEC.md §6): a session presents a fresh
one with AUTH before the old one expires, and a reconnect needs a valid one
for HELLO. `Credentials` is the small interface the session uses for that;
`RefreshingCredentials` implements it with ``/auth/refresh``, and
`StaticToken` is a token the SDK cannot renew.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

from .http import HttpApi, Tokens

__all__ = ["Credentials", "RefreshingCredentials", "StaticToken"]


class Credentials(Protocol):
    """A source of access tokens for one user."""

    @property
    def renew_at(self) -> float | None:
        """When (``time.time()`` seconds) to get a new token, or None for never."""
        ...

    async def access_token(self, *, renew: bool = False) -> str:
        """A token that is valid now; a new one if ``renew`` (the server refused the last)."""
        ...


class StaticToken:
    """One access token, used until the server refuses it."""

    def __init__(self, token: str) -> None:
        self._token = token

    @property
    def renew_at(self) -> float | None:
        return None

    async def access_token(self, *, renew: bool = False) -> str:
        return self._token


class RefreshingCredentials:
    """Tokens from a login, refreshed over HTTP a while before they expire.

    Refreshes are serialised: the server retires a refresh token once it is
    used, and treats a second use as theft (ending the session).
    """

    #: Renew this long before expiry, or a third of the lifetime if shorter.
    MARGIN_S = 60.0

    def __init__(self, api: HttpApi, tokens: Tokens) -> None:
        self._api = api
        self._lock = trio.Lock()
        self._set(tokens)

    @property
    def tokens(self) -> Tokens:
        return self._tokens

    @property
    def renew_at(self) -> float:
        return self._renew_at

    async def access_token(self, *, renew: bool = False) -> str:
        current = self._tokens
        if not renew and time.time() < self._renew_at:
            return current.access_token
        async with self._lock:
            if self._tokens is current:  # nobody refreshed while we waited
                self._set(await self._api.refresh(current.refresh_token))
        return self._tokens.access_token

    def _set(self, tokens: Tokens) -> None:
        lifetime = tokens.expires_at - time.time()
        self._tokens = tokens
        self._renew_at = tokens.expires_at - min(self.MARGIN_S, lifetime / 3)
