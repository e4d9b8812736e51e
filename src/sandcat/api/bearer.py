"""Bearer authentication of HTTP requests (``Authorization: Bearer <access token>``)."""

from __future__ import annotations

from typing import Protocol

from quart import request

from sandcat.domain.accounts import Accounts, Principal
from sandcat.errors import Unauthorized
from sandcat.logs import add_context

#: Close code for a session ended by logout or revocation (protocol/SPEC.md §8).
SESSION_ENDED = 4007


class SessionCloser(Protocol):
    """Closes live sockets; the gateway's connection hub implements it."""

    def end_sessions(
        self, user: str, *, session: str | None = None, code: int = 4007, reason: str = ""
    ) -> None:
        """Close the sockets of ``session`` (all of ``user``'s if None); never blocks."""


async def authenticated(accounts: Accounts) -> Principal:
    """The principal of the request's bearer token; ``Unauthorized`` (401) otherwise.

    The token must be valid and unexpired, its session live and its user enabled.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    principal = await accounts.authenticate(token)
    add_context(user_id=principal.user, device=principal.device)
    return principal
