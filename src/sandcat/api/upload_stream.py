"""Request bodies read as a stream, with back-pressure, for uploads.

Quart's receiver task copies every ASGI body message into the request's
buffer as fast as the network delivers, and counts the app-wide
``MAX_CONTENT_LENGTH`` against that buffer. For uploads both are wrong: a
fast client would fill memory while the handler writes to disk, and a 100 MiB
file would trip the 1 MiB JSON limit. ``StreamingBody.stream`` switches one
request to streaming: the per-route limit is the caller's to enforce chunk by
chunk, and the receiver waits while more than ``_HIGH_WATER`` bytes sit
unread, so TCP flow control pushes back on the client. Routes that never
call ``stream`` behave exactly as before.

``multipart_file`` pulls the first file part out of a ``multipart/form-data``
stream with werkzeug's sans-IO decoder, without buffering the file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import trio
from hypercorn.typing import ASGIReceiveCallable
from quart import request
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody, TrioRequest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from sandcat.errors import ClientError, SandcatError, TooLarge

#: Unread bytes above which the receiver stops reading the socket.
_HIGH_WATER = 256 * 1024
#: Bytes of form data (other fields, part headers) allowed around the file part.
_FORM_OVERHEAD = 64 * 1024


class UploadTimeout(SandcatError):
    code = "bad_request"
    http_status = 408


class StreamingBody(TrioBody):
    def __init__(self, expected_content_length: int | None, max_content_length: int | None):
        super().__init__(expected_content_length, max_content_length)
        self._streaming = False
        self._room: trio.Event | None = None

    def start_streaming(self) -> None:
        """Lift the app-wide size limit; the caller enforces its own."""
        if isinstance(self._must_raise, RequestEntityTooLarge):
            self._must_raise = None
        self._max_content_length = None
        self._streaming = True

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        finally:
            if self._room is not None:
                self._room.set()
                self._room = None

    async def wait_for_room(self) -> None:
        while self._streaming and len(self._data) >= _HIGH_WATER and not self._complete.is_set():
            self._room = trio.Event()
            await self._room.wait()


class StreamingRequest(TrioRequest):
    body_class = StreamingBody


class StreamingConnection(TrioASGIHTTPConnection):
    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, request: TrioRequest, receive: ASGIReceiveCallable
    ) -> None:
        body = request.body
        while True:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
                elif isinstance(body, StreamingBody):
                    await body.wait_for_room()
            elif message["type"] == "http.disconnect":
                break
        nursery.cancel_scope.cancel()


async def body_chunks(*, idle_timeout_s: float) -> AsyncGenerator[bytes, None]:
    """The current request's body, chunk by chunk; 408 if the client stalls."""
    body = request.body
    assert isinstance(body, StreamingBody)
    body.start_streaming()
    chunks = body.__aiter__()
    while True:
        with trio.move_on_after(idle_timeout_s) as waited:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
        if waited.cancelled_caught:
            raise UploadTimeout(f"no upload data for {idle_timeout_s:g} s")
        if chunk:
            yield chunk


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
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=4 * _HIGH_WATER)
    skipped = 0

    async def feed() -> bool:
        try:
            chunk = await source.__anext__()
        except StopAsyncIteration:
            decoder.receive_data(None)
            return False
        decoder.receive_data(chunk)
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
