"""Wire error codes, close codes, and the exceptions of the protocol core.

Errors are split by what the gateway must do about them:

- `FrameError`: the peer sent something that is not a frame. Fatal: answer
  ERR if a rid could be read, then close with `FrameError.close_code`.
- `RequestError`: a well-formed frame the server cannot act on (unknown op,
  invalid field). Answer ERR; the connection stays open.
- `ContentError`: a SEND body that does not fit its content kind. Answer
  ERR ``bad_request``; the connection stays open.
- `SessionError`: a frame or server event not allowed in the session's
  current state; carries the close code, if any.
"""

from __future__ import annotations

import enum

__all__ = [
    "CloseCode",
    "ContentError",
    "ErrorCode",
    "FrameError",
    "ProtocolError",
    "RequestError",
    "SessionError",
]


class ErrorCode(enum.StrEnum):
    """``ERR.code`` on the wire (SPEC.md "Error codes")."""

    UNAUTHENTICATED = "unauthenticated"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    BAD_FRAME = "bad_frame"
    BAD_REQUEST = "bad_request"
    UNKNOWN_OP = "unknown_op"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class CloseCode(enum.IntEnum):
    """WebSocket close codes (RFC 6455 §7.4 and Sandcat's 4000-range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    REPLACED = 4001
    UNAUTHENTICATED = 4002
    AUTH_TIMEOUT = 4003
    ABUSE = 4004
    SLOW_CONSUMER = 4005
    IDLE_TIMEOUT = 4006
    SESSION_ENDED = 4007


class ProtocolError(Exception):
    """Base of every error the protocol core raises about peer input.

    Attributes:
        code: the `ErrorCode` to put in an ERR reply.
        message: human-readable cause; also ``str(error)``.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FrameError(ProtocolError):
    """Bytes that are not a valid frame; the connection must close.

    Attributes:
        close_code: 1009 for an oversized frame, else 1007.
        rid: the rid to answer ERR to, or None when none could be read (or it
            was 0, which would look like a push).
    """

    def __init__(
        self, code: ErrorCode, message: str, *, close_code: CloseCode, rid: int | None
    ) -> None:
        super().__init__(code, message)
        self.close_code = close_code
        self.rid = rid


class RequestError(ProtocolError):
    """A valid frame that cannot be acted on; answer ERR, keep the connection.

    Attributes:
        rid: the rid of the offending frame.
    """

    def __init__(self, code: ErrorCode, message: str, *, rid: int) -> None:
        super().__init__(code, message)
        self.rid = rid


class ContentError(ProtocolError, ValueError):
    """A message body that does not match its content kind (ERR bad_request)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.BAD_REQUEST, message)


class SessionError(ProtocolError):
    """A frame or event not allowed in the session's current state.

    Attributes:
        close_code: close the connection with this code after the ERR, or
            None to keep it open.
    """

    def __init__(self, code: ErrorCode, message: str, *, close_code: CloseCode | None) -> None:
        super().__init__(code, message)
        self.close_code = close_code
