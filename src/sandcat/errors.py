"""Errors with wire codes, split by cause.

Every error the server turns into a reply carries the error code of
protocol/SPEC.md §7 and the HTTP status it maps to. ``ClientError`` means the
caller did something wrong and may not retry unchanged; ``ServerError`` means
we failed; ``Unavailable`` is the retryable kind of that.
"""

from __future__ import annotations

from collections.abc import Callable


class SandcatError(Exception):
    """Base of every error Sandcat raises on purpose."""

    code: str = "internal"
    http_status: int = 500

    def __init__(
        self, message: str, *, field: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The request field at fault, when there is one (422 names it).
        self.field = field
        #: A stable word that tells refusals with the same code apart (e.g. a
        #: 403 ``banned`` from a 403 ``invite_expired``), when the code alone
        #: does not say what the client should do.
        self.reason = reason


class ClientError(SandcatError):
    code = "bad_request"
    http_status = 400


class BadRequest(ClientError):
    """A well-formed request whose fields are invalid."""

    code = "bad_request"
    http_status = 422


class Unauthorized(ClientError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ClientError):
    """Not allowed; also the answer for things the caller may not know exist."""

    code = "forbidden"
    http_status = 403


class NotFound(ClientError):
    code = "not_found"
    http_status = 404


class Conflict(ClientError):
    code = "conflict"
    http_status = 409


class TooLarge(ClientError):
    code = "too_large"
    http_status = 413


class RateLimited(ClientError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class ServerError(SandcatError):
    code = "internal"
    http_status = 500


class Unavailable(ServerError):
    """Retryable: storage is down or the server is overloaded or draining."""

    code = "unavailable"
    http_status = 503


class StoreUnavailable(Unavailable):
    """A store's driver failed; raised by adapters with ``from exc``."""


class LocalStoreUnavailable(StoreUnavailable):
    """A store in this machine's files cannot be opened (the SQLite database or
    its server lock, the blob directory): waiting does not mend it, so startup
    does not retry it (sandcat/startup.py)."""


#: What a backend adapter reports of each driver call that failed, before it raises
#: ``StoreUnavailable`` (or the bus's or broadcast's twin): ``on_failure(backend,
#: kind)``, backend ``postgres``, ``sqlite``, ``redis``, ``mongo``, ``s3`` or
#: ``kafka``, kind ``timeout`` (a deadline passed: ours or the driver's) or
#: ``error`` (anything else). Refusals that are the caller's (a unique violation,
#: a missing blob) are not failures. The composition root counts them
#: (``sandcat_backend_call_errors_total``); adapters default to ``ignore_failure``.
BackendFailure = Callable[[str, str], None]


def ignore_failure(backend: str, kind: str) -> None:
    """The ``BackendFailure`` of a process that does not count them (admin commands)."""


class RejectedValue(ServerError):
    """The store refused a value of a write (PostgreSQL text with U+0000, a string
    with a lone surrogate, a number out of range): the write rolled back, and
    writing the same values again cannot succeed. The edges should have refused
    the value first, so reaching here is a server error, not an outage."""


class ConfigError(Exception):
    """A configuration value is invalid; the message names the key and value."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        super().__init__(f"config {key} = {value!r}: {reason}")
        self.key = key
        self.value = value
        self.reason = reason


class ListenError(OSError):
    """A listening socket could not be opened; the message names the address and
    the setting that chose it (``cannot listen on 127.0.0.1:50001 (http_port):
    address already in use``)."""

    def __init__(self, host: str, port: int, setting: str, cause: OSError) -> None:
        reason = (cause.strerror or str(cause)).lower()
        shown = f"[{host}]" if ":" in host else host
        super().__init__(cause.errno, f"cannot listen on {shown}:{port} ({setting}): {reason}")
        self.message = self.strerror
        self.setting = setting

    def __str__(self) -> str:
        return str(self.message)
