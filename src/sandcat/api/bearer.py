"""Bearer authentication of HTTP requests (``Authorization: Bearer <access token>``)."""

from __future__ import annotations

from quart import request

from sandcat.domain.accounts import Accounts, Principal
from sandcat.errors import Unauthorized


async def authenticated(accounts: Accounts) -> Principal:
    """The principal of the request's bearer token; ``Unauthorized`` (401) otherwise.

    The token must be valid and unexpired, its session live and its user enabled.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    return await accounts.authenticate(token)
