"""The HTTP plumbing under `HttpApi`: one ``httpx.AsyncClient``, bearer tokens, error bodies.

Every route module of the SDK's HTTP client (``http_people``, ``http_contacts``, ``http_groups``,
``http_files``, ``http_conversations``) builds on `HttpTransport`; `HttpApi`
(``http.py``) puts them together. An error answer raises `HttpError` with the
wire code, the HTTP status, and ``retry_after_ms``/``field``/``reason`` when
the server gave them (SPEC.md §13).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
import trio

from .errors import HttpError

__all__ = ["JSON", "HttpTransport"]

JSON = dict[str, Any]

#: Every route but /healthz and /metrics lives under this prefix (SPEC.md §13).
API_PREFIX = "/api/v1"


def _params(query: Mapping[str, object | None]) -> dict[str, str]:
    """Query parameters without the absent ones; booleans and ints as the server reads them."""
    return {key: str(value) for key, value in query.items() if value is not None}


def _fields(**fields: object) -> JSON:
    """A JSON body of the fields given (``None`` means "not sent")."""
    return {key: value for key, value in fields.items() if value is not None}


class HttpTransport:
    """A client of one Sandcat server's HTTP port.

    Args:
        base_url: the HTTP origin, e.g. ``http://127.0.0.1:50001``.
        timeout_s: deadline for each request.
        transport: an ``httpx`` transport to use instead of the network.
        tls: the TLS context for ``https://`` (default: the system's trusted
            certificates).

    Use it as an async context manager, or call `aclose` when done.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            transport=transport,
            verify=tls if tls is not None else True,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: JSON | None = None,
        token: str | None = None,
        query: Mapping[str, object | None] | None = None,
    ) -> JSON:
        """A JSON route under ``/api/v1``; ``{}`` for 204."""
        response = await self._send(method, API_PREFIX + path, json=json, token=token, query=query)
        if response.status_code == 204:
            return {}
        return _object(response)

    async def _save(self, url: str, path: str | os.PathLike[str], *, token: str) -> int:
        """Stream a GET's body into the file ``path`` (created or truncated); the bytes
        written. Raises `HttpError` for a 4xx/5xx answer (nothing is written then)."""
        headers = {"Authorization": f"Bearer {token}"}
        async with self._http.stream("GET", url, headers=headers) as response:
            if response.is_error:
                await response.aread()
                raise _error(response)
            written = 0
            async with await trio.open_file(path, "wb") as out:
                async for chunk in response.aiter_bytes():
                    written += await out.write(chunk)
            return written

    async def _send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        json: JSON | None = None,
        query: Mapping[str, object | None] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> httpx.Response:
        """Any request; raises `HttpError` for a 4xx/5xx answer."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        response = await self._http.request(
            method,
            url,
            json=json,
            # An empty params would replace a query already in the url (a signed link).
            params=_params(query) if query else None,
            headers=sent,
            content=content,
            files=files,
        )
        if response.is_error:
            raise _error(response)
        return response


def _object(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise HttpError(response.status_code, "internal", "reply is not a JSON object")
    return body


def _error(response: httpx.Response) -> HttpError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return HttpError(response.status_code, "internal", response.text[:200])
    retry = error.get("retry_after_ms")
    field = error.get("field")
    reason = error.get("reason")
    return HttpError(
        response.status_code,
        str(error.get("code")),
        str(error.get("message")),
        retry_after_ms=retry if isinstance(retry, int) else None,
        field=field if isinstance(field, str) else None,
        reason=reason if isinstance(reason, str) else None,
    )
