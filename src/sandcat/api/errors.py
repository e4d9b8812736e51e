"""Every error leaves the API as JSON: ``{"error": {"code", "message", "field"?}}``.

Sandcat errors carry their own code and status. Quart's HTTP errors (unknown
route, wrong method, body too large) get the nearest protocol/SPEC.md §7 code. An
unexpected exception is logged by Quart with its traceback and answered 500
``internal`` with no detail, never an HTML page.
"""

from __future__ import annotations

import contextlib
import logging
import math

import trio
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from sandcat.api.payload import json_response
from sandcat.api.upload_stream import streamed_body
from sandcat.errors import RateLimited, SandcatError
from sandcat.metrics import Counter

#: Largest unread body drained before an early answer (else the connection closes).
MAX_DRAIN_BYTES = 1 << 20
#: How long a body still arriving may take to drain before the connection closes.
DRAIN_TIMEOUT_S = 1.0
#: How much of the rest of a refused upload is read and dropped, and for how
#: long, so that a client still sending it can read the answer.
UPLOAD_DRAIN_BYTES = 8 << 20
UPLOAD_DRAIN_TIMEOUT_S = 2.0

#: Rate-limit refusals at INFO (the route and the client are in the access line).
limits_log = logging.getLogger("sandcat.ratelimit")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "bad_request",
    429: "rate_limited",
    503: "unavailable",
}
_MESSAGES = {
    404: "no such route",
    405: "method not allowed on this route",
    413: "request body too large",
    500: "internal server error",
}


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, **extra: object
) -> Response:
    error: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    error.update(extra)
    response = json_response({"error": error}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _sandcat_error(error: SandcatError) -> Response:
    if isinstance(error, RateLimited):
        limits_log.info(
            "HTTP request refused (rate limit): %s; retry after %d ms",
            error.message,
            error.retry_after_ms,
            extra={"event": "rate_limited", "transport": "http"},
        )
        response = error_response(
            error.http_status, error.code, error.message, retry_after_ms=error.retry_after_ms
        )
        response.headers["Retry-After"] = str(math.ceil(error.retry_after_ms / 1000))
        return response
    extra = {} if error.reason is None else {"reason": error.reason}
    return error_response(error.http_status, error.code, error.message, field=error.field, **extra)


async def _drain_body(response: Response) -> Response:
    """Read what is left of a small request body before answering (after_request).

    A response sent before the body was read (401, 404, 405, the automatic
    OPTIONS answer) would leave the rest of the body on a keep-alive
    connection, and hypercorn then stalls the next request on that connection
    (found by ``nox -s fuzz-api``). A body that is large, of unknown length,
    refused for its size or slowness (413, 408), or not there within
    ``DRAIN_TIMEOUT_S`` is not waited for: the connection is closed instead.
    An upload route's body (``sandcat.api.upload_stream``) is drained, whatever
    its declared size, up to ``UPLOAD_DRAIN_BYTES`` in ``UPLOAD_DRAIN_TIMEOUT_S``.
    """
    upload = streamed_body()
    if upload is not None:
        if not upload.complete and not await upload.discard(
            max_bytes=UPLOAD_DRAIN_BYTES, timeout_s=UPLOAD_DRAIN_TIMEOUT_S
        ):
            response.headers["Connection"] = "close"
        return response
    length = request.content_length
    if length is None and "transfer-encoding" not in request.headers:
        return response  # no body at all
    if length is not None and length <= MAX_DRAIN_BYTES and response.status_code not in (408, 413):
        with trio.move_on_after(DRAIN_TIMEOUT_S), contextlib.suppress(HTTPException):
            await request.get_data()
            return response
    response.headers["Connection"] = "close"
    return response


async def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = _CODES.get(status, "internal" if status >= 500 else "bad_request")
    message = _MESSAGES.get(status) or (error.description or error.name).rstrip(".")
    if status >= 500:
        message = _MESSAGES[500]
    response = error_response(status, code, message)
    valid = getattr(error, "valid_methods", None)
    if status == 405 and valid:
        response.headers["Allow"] = ", ".join(valid)
    return response


def install_error_counter(app: QuartTrio, errors: Counter) -> None:
    """Count every error answer in ``sandcat_errors_total{transport="http",code}``:
    the code of the JSON error body, or the status for anything else."""

    async def count(response: Response) -> Response:
        if response.status_code >= 400:
            errors.inc(1, "http", await _error_code(response))
        return response

    app.after_request(count)


async def _error_code(response: Response) -> str:
    if response.mimetype == "application/json":
        body = await response.get_json(silent=True)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])
    return str(response.status_code)


def install_error_handlers(app: QuartTrio) -> None:
    app.after_request(_drain_body)
    app.register_error_handler(SandcatError, _sandcat_error)
    # Covers InternalServerError, which Quart raises after logging an
    # unexpected exception with its traceback (Quart.handle_exception).
    app.register_error_handler(HTTPException, _http_error)
