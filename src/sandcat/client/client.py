"""The entry points: `open_session` with a token, `open_client` with a password."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from sandcat.protocol import is_valid_id

from .credentials import Credentials, RefreshingCredentials, StaticToken
from .http import HttpApi
from .http_files import FileInfo, attachment
from .http_people import User
from .options import SessionOptions
from .replies import Ack
from .session import Session

__all__ = ["Client", "SentFile", "open_client", "open_session"]


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
    user: User
    credentials: RefreshingCredentials

    @property
    def user_id(self) -> str:
        return self.user.id

    async def access_token(self) -> str:
        """A valid access token for HTTP calls (refreshed when due)."""
        return await self.credentials.access_token()

    async def send_file(
        self,
        cid: str,
        data: bytes,
        *,
        content_type: str,
        kind: str = "file",
        name: str | None = None,
        multipart: bool = False,
        **fields: Any,
    ) -> SentFile:
        """Upload ``data`` as an upload of ``kind`` and send it to ``cid``.

        ``kind`` is the upload kind (image, file, voice, video); the message is
        the matching kind (SPEC.md §9) with ``mime``, ``size``, ``width`` ... taken
        from the upload (`attachment`). ``fields``: ``thumb``, ``width``,
        ``height``, ``duration_ms`` the server could not read, and `Session.send`'s
        ``reply_to``, ``mentions``, ``cmid``.

        Raises:
            HttpError: the upload was refused (413 too large, 415 wrong type).
            SandcatClientError: the send was refused.
            ValueError: the message needs a field the upload does not give.
        """
        token = await self.access_token()
        file = await self.api.upload_file(
            token, data, content_type=content_type, kind=kind, name=name, multipart=multipart
        )
        return SentFile(file=file, ack=await self.send_upload(cid, file, **fields))

    async def send_upload(
        self,
        cid: str,
        file: FileInfo,
        *,
        kind: int | None = None,
        name: str | None = None,
        thumb: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration_ms: int | None = None,
        **send: Any,
    ) -> Ack:
        """Send an upload already made; `attachment` builds the body.

        ``send``: `Session.send`'s ``reply_to``, ``mentions``, ``cmid``.
        """
        message_kind, body = attachment(
            file,
            kind=kind,
            name=name,
            thumb=thumb,
            width=width,
            height=height,
            duration_ms=duration_ms,
        )
        return await self.session.send(cid, kind=message_kind, body=body, **send)


@dataclass(frozen=True, slots=True)
class SentFile:
    """What `Client.send_file` did: the upload, and the ack of the message sending it."""

    file: FileInfo
    ack: Ack


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
    async with HttpApi(http_url, timeout_s=options.request_timeout_s, tls=options.tls) as api:
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


@asynccontextmanager
async def open_session(
    ws_url: str,
    credentials: Credentials | str,
    *,
    device: str,
    platform: str = "desktop",
    positions: Mapping[str, int] | None = None,
    options: SessionOptions | None = None,
) -> AsyncIterator[Session]:
    """Connect a device and keep it connected for the duration of the block.

    Args:
        ws_url: the gateway URL (``ws://host:port/ws``; login returns it).
        credentials: an access token, or a `Credentials` that can renew it.
        device: this device's id; a second connection of the same device
            replaces this one (which then ends with `SessionClosed` 4001).
        positions: the last seq the application already has per cid, to
            resume from. Conversations not listed start at their newest
            message when the session connects; ones created later are
            delivered from their first message.

    Raises:
        SessionClosed: the first connection could not be made (server
            unreachable after all attempts, credentials refused).
    """
    if not is_valid_id(device):
        raise ValueError(f"device: must be an id (1-64 chars of [A-Za-z0-9_-]), got {device!r}")
    if isinstance(credentials, str):
        credentials = StaticToken(credentials)
    try:
        async with trio.open_nursery() as nursery:
            session = Session(
                ws_url,
                credentials,
                device=device,
                platform=platform,
                positions=positions,
                options=options or SessionOptions(),
                nursery=nursery,
            )
            await session._start()
            try:
                yield session
            finally:
                await session.aclose()
    except BaseExceptionGroup as group:
        # The session's own tasks do not raise, so a group holds the one
        # exception of the block (or of the first connection): unwrap it.
        if len(group.exceptions) == 1:
            exc = group.exceptions[0]
            raise exc from exc.__cause__
        raise
