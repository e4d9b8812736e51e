"""Upload bodies read straight from ASGI, with back-pressure, for the upload routes.

Quart's HTTP connection copies every body message into the request's buffer
as fast as the network delivers it, and counts the app-wide
``MAX_CONTENT_LENGTH`` (1 MiB of JSON) against that buffer. Neither suits a
100 MiB upload: memory would grow with a fast client, and the limit is the
wrong one. So the upload routes do not take their body from Quart at all.
``StreamedUploads`` is ASGI middleware, installed the way Quart documents
(``app.asgi_app = StreamedUploads(app.asgi_app, ...)``): for a request to one
of the upload endpoints it gives Quart an empty body and puts an
``UploadBody`` reading the server's ``receive`` in the ASGI scope. The route
pulls chunks from it at the pace it stores them, so hypercorn's bounded queue
and TCP flow control hold the client back; the route enforces its own limit.
Nothing here touches Quart's or hypercorn's internals: only the ASGI
interface and Quart's documented middleware hook and ``request.scope``.

An ``UploadBody`` ends only when the server says the body is complete
(``more_body: false``, which h11 gives only after exactly Content-Length
bytes or the last chunk); a disconnect or an idle client is an error, never
a short upload.

``multipart_file`` pulls the first file part out of a ``multipart/form-data``
stream with werkzeug's sans-IO decoder, without buffering the file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final, cast

import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    HTTPScope,
    Scope,
)
from quart import request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map
from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from sandcat.errors import ClientError, SandcatError, TooLarge

#: Bytes of form data (other fields, part headers) allowed around the file part.
_FORM_OVERHEAD = 64 * 1024
#: Bytes the multipart decoder may hold unconsumed (a part's headers, a chunk).
_DECODER_BUFFER = 1 << 20
#: Scope key under which the middleware leaves a request's ``UploadBody``.
_SCOPE_KEY: Final = "sandcat.upload_body"

AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


class UploadTimeout(SandcatError):
    code = "bad_request"
    http_status = 408


class BodyIncomplete(ClientError):
    """The client went away (or broke the framing) before the body ended."""


class UploadBody:
    """One request's body, read from ASGI ``receive`` only when asked for.

    ``chunks`` yields the body once, in order; ``discard`` reads and drops what
    is left (before an early answer). ``complete`` tells whether the body has
    been read to its end.
    """

    def __init__(self, receive: ASGIReceiveCallable, *, declared_length: int | None) -> None:
        self._receive = receive
        self._declared = declared_length
        self._received = 0
        self._complete = False
        self._gone = trio.Event()
        self._quart_fed = False

    @property
    def complete(self) -> bool:
        return self._complete

    async def _next(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        if self._complete:
            return None
        if self._gone.is_set():
            raise BodyIncomplete("the client closed the connection during the upload")
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._gone.set()
            raise BodyIncomplete("the client closed the connection during the upload")
        if message["type"] != "http.request":
            raise BodyIncomplete(f"unexpected ASGI message {message['type']!r}")
        chunk = bytes(message.get("body", b""))
        self._received += len(chunk)
        if not message.get("more_body", False):
            self._complete = True
            if self._declared is not None and self._received != self._declared:
                # h11 never lets this happen; a body we cannot account for is refused.
                raise BodyIncomplete(
                    f"received {self._received} bytes of a {self._declared}-byte body"
                )
        return chunk

    async def chunks(self, *, idle_timeout_s: float) -> AsyncGenerator[bytes, None]:
        """The body, chunk by chunk (no empty ones); 408 if nothing comes for
        ``idle_timeout_s``, 400 if the client leaves before the end."""
        while True:
            with trio.move_on_after(idle_timeout_s) as waited:
                chunk = await self._next()
            if waited.cancelled_caught:
                raise UploadTimeout(f"no upload data for {idle_timeout_s:g} s")
            if chunk is None:
                return
            if chunk:
                yield chunk

    async def discard(self, *, max_bytes: int, timeout_s: float) -> bool:
        """Read and drop up to ``max_bytes`` more of the body for up to ``timeout_s``;
        True if it ended.

        Answering before the body is read would leave it on the connection:
        hypercorn then closes the socket with unread data, and the client's
        kernel may reset it before the client reads the answer.
        """
        stop = self._received + max_bytes
        with trio.move_on_after(timeout_s):
            try:
                while self._received <= stop and await self._next() is not None:
                    pass
            except BodyIncomplete:
                return False
        return self._complete

    async def receive_for_quart(self) -> ASGIReceiveEvent:
        """What Quart's own body reader gets: an empty body, then the disconnect."""
        if not self._quart_fed:
            self._quart_fed = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}


class StreamedUploads:
    """ASGI middleware: requests to ``endpoints`` of ``url_map`` get an ``UploadBody``."""

    def __init__(self, app: AsgiApp, url_map: Map, endpoints: Collection[str]) -> None:
        self._app = app
        self._urls = url_map
        self._endpoints = frozenset(endpoints)

    def _streams(self, scope: HTTPScope) -> bool:
        if scope["method"] not in {"POST", "PUT"}:
            return False
        try:
            endpoint, _ = self._urls.bind("").match(scope["path"], scope["method"])
        except HTTPException:  # no such route: Quart answers it
            return False
        return endpoint in self._endpoints

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or not self._streams(scope):
            await self._app(scope, receive, send)
            return
        body = UploadBody(receive, declared_length=_content_length(scope))
        extensions = {**(scope.get("extensions") or {}), _SCOPE_KEY: body}
        streamed = cast(HTTPScope, {**scope, "extensions": extensions})
        await self._app(streamed, body.receive_for_quart, send)


def _content_length(scope: HTTPScope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def streamed_body() -> UploadBody | None:
    """The current request's ``UploadBody``, or None if its route is not streamed."""
    found = (request.scope.get("extensions") or {}).get(_SCOPE_KEY)
    return found if isinstance(found, UploadBody) else None


def upload_body() -> UploadBody:
    """The current request's ``UploadBody``; its route must be a streamed endpoint."""
    body = streamed_body()
    if body is None:
        raise RuntimeError(f"{request.path} is not registered as a streamed upload route")
    return body


@dataclass
class FilePart:
    filename: str
    content_type: str | None
    chunks: AsyncGenerator[bytes, None]


async def multipart_file(source: AsyncIterator[bytes], boundary: str) -> FilePart:
    """The first file part of a multipart body (field name ``file`` or any file field).

    Reads at most ``_FORM_OVERHEAD`` bytes of other parts before it; 400 for a
    body that is not valid multipart or has no file part.
    """
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=_DECODER_BUFFER)
    skipped = 0

    async def feed() -> bool:
        try:
            chunk = await source.__anext__()
        except StopAsyncIteration:
            decoder.receive_data(None)
            return False
        try:
            decoder.receive_data(chunk)
        except RequestEntityTooLarge as exc:
            raise TooLarge("multipart part headers too large") from exc
        return True

    def event() -> object:
        try:
            return decoder.next_event()
        except RequestEntityTooLarge as exc:
            raise TooLarge("multipart headers too large") from exc
        except ValueError as exc:
            raise ClientError(f"malformed multipart body: {exc}") from exc

    while True:
        found = event()
        if isinstance(found, NeedData):
            await feed()
            continue
        if isinstance(found, File):
            part = found
            break
        if isinstance(found, Epilogue):
            raise ClientError("multipart body has no file part")
        if isinstance(found, Data):
            skipped += len(found.data)
            if skipped > _FORM_OVERHEAD:
                raise TooLarge("too much form data before the file part")

    async def part_chunks() -> AsyncGenerator[bytes, None]:
        while True:
            data = event()
            if isinstance(data, NeedData):
                if not await feed():
                    # Only a truncated body ends while the part still wants data.
                    raise ClientError("malformed multipart body: truncated")
                continue
            assert isinstance(data, Data)
            if data.data:
                yield data.data
            if not data.more_data:
                return

    return FilePart(
        filename=part.filename or "",
        content_type=part.headers.get("content-type"),
        chunks=part_chunks(),
    )
