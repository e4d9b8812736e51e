"""Chunked reading of a blocking file-like object from Trio (both backends use it)."""

from __future__ import annotations

import contextlib
from typing import Protocol

import trio

from sandcat.errors import StoreUnavailable

#: Bytes read per chunk: large enough to keep thread hops rare.
CHUNK_BYTES = 256 * 1024


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def close(self) -> None: ...


class ThreadedReader:
    """Reads ``remaining`` bytes of ``handle`` in worker threads.

    ``errors`` lists the driver's exception types that mean the storage
    failed; they leave as ``StoreUnavailable``.
    """

    def __init__(
        self,
        handle: _Readable,
        remaining: int,
        *,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._handle = handle
        self._remaining = remaining
        self._errors = errors
        self._closed = False

    def __aiter__(self) -> ThreadedReader:
        return self

    async def __anext__(self) -> bytes:
        if self._remaining <= 0 or self._closed:
            await self.aclose()
            raise StopAsyncIteration
        size = min(CHUNK_BYTES, self._remaining)
        try:
            chunk = await trio.to_thread.run_sync(self._handle.read, size)
            if not chunk:
                raise StoreUnavailable("blob ended early (changed or truncated underneath)")
        except self._errors as exc:
            await self._close_quietly()
            raise StoreUnavailable(f"blob read failed: {exc}") from exc
        except BaseException:
            await self._close_quietly()
            raise
        self._remaining -= len(chunk)
        return chunk

    async def _close_quietly(self) -> None:
        # The read's own error is the one to report; closing after it may fail too.
        with trio.CancelScope(shield=True), contextlib.suppress(StoreUnavailable):
            await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await trio.to_thread.run_sync(self._handle.close)
        except self._errors as exc:
            raise StoreUnavailable(f"closing a blob failed: {exc}") from exc
