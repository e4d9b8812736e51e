"""The SDK's exceptions, split by cause.

- `SandcatClientError`: the server refused a request (an ERR frame, or an
  HTTP error body); carries the wire code.
- `HttpError`: the same for the JSON API, with the HTTP status.
- `SessionClosed`: the session is over for good (replaced by another
  connection of the device, logged out, reconnect attempts exhausted, ...);
  every later call raises it too.
"""

from __future__ import annotations

from sandcat.protocol import ErrorCode

__all__ = ["HttpError", "SandcatClientError", "SessionClosed"]


class SandcatClientError(Exception):
    """The server answered a request with an error.

    Attributes:
        code: the wire error code (protocol/SPEC.md §7), an `ErrorCode` for the
            codes the protocol defines, else the string as received.
        message: the server's human-readable reason.
        retry_after_ms: how long to wait before trying again, when the server
            said (``rate_limited``, ``unavailable``).
    """

    def __init__(
        self, code: ErrorCode | str, message: str, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


class HttpError(SandcatClientError):
    """The JSON API answered with an error status.

    Attributes:
        status: the HTTP status code.
        field: the request field at fault (422), when the server named it.
        reason: a word telling apart refusals with the same code (e.g.
            ``banned``, ``invite_expired``), when the server gave one.
    """

    def __init__(
        self,
        status: int,
        code: ErrorCode | str,
        message: str,
        *,
        retry_after_ms: int | None = None,
        field: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(code, message, retry_after_ms)
        self.status = status
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.message}"


class SessionClosed(Exception):
    """The session ended and will not reconnect.

    Attributes:
        code: the WebSocket close code that ended it (4001 replaced, 4007
            session ended, ...), or None when it ended without one (local
            close, reconnect attempts exhausted, credentials refused).
        reason: why, in words.
    """

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"session closed ({code}): {reason}" if code else reason)
        self.code = code
        self.reason = reason
