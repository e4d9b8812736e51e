"""The one-call entry point: log in over HTTP, then keep a session open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .credentials import RefreshingCredentials
from .http import JSON, HttpApi
from .options import SessionOptions
from .session import Session, open_session

__all__ = ["Client", "open_client"]


@dataclass(frozen=True, slots=True)
class Client:
    """A logged-in device: the HTTP API, the live session and the user.

    Attributes:
        api: the JSON API; authenticated calls take ``await access_token()``.
        session: the WebSocket session (send, receive, pull, sync, ...).
        user: the user object the login returned.
        credentials: the tokens, refreshed as they near expiry.
    """

    api: HttpApi
    session: Session
    user: JSON
    credentials: RefreshingCredentials

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    async def access_token(self) -> str:
        """A valid access token for HTTP calls (refreshed when due)."""
        return await self.credentials.access_token()


@asynccontextmanager
async def open_client(
    http_url: str,
    *,
    login: str,
    password: str,
    device: str,
    platform: str = "desktop",
    ws_url: str | None = None,
    positions: Mapping[str, int] | None = None,
    options: SessionOptions | None = None,
) -> AsyncIterator[Client]:
    """Log in as ``login`` on ``device`` and keep a session open for the block.

    Args:
        http_url: the server's HTTP origin (``http://host:50001``).
        ws_url: the gateway URL; by default the one the login returns.
        positions, options: as for `open_session`.

    Raises:
        HttpError: the login failed (``unauthorized`` for a wrong password).
        SessionClosed: the session could not be opened.
    """
    options = options or SessionOptions()
    async with HttpApi(http_url, timeout_s=options.request_timeout_s) as api:
        result = await api.login(login, password, device=device, platform=platform)
        credentials = RefreshingCredentials(api, result.tokens)
        async with open_session(
            ws_url or result.ws_url,
            credentials,
            device=device,
            platform=platform,
            positions=positions,
            options=options,
        ) as session:
            yield Client(api=api, session=session, user=result.user, credentials=credentials)
