"""The HTTP access log: one INFO line per request on the ``sandcat.access`` logger.

ASGI middleware inside ``ForwardedClient`` (so the client address is the one the
trusted-proxy rule resolved) and around Quart. Each request gets a request id
(answered in ``X-Request-Id``) and a log context (``sandcat.logs``) that the
routes add the user to once the bearer is checked; the line names the route
template (``/api/v1/users/<user_id>``), never the raw path or its query string,
which may carry a signed download token.

``log.access = false`` turns the line off; the request id, the context and the
``observe`` hook (the request metrics) stay.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from sandcat.logs import open_context

log = logging.getLogger("sandcat.access")

#: The route label of a request no route matches (404/405 from Quart).
UNMATCHED = "<unmatched>"

AsgiApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Any]
#: Called once per request: route template, method, status, seconds.
Observer = Callable[[str, str, int, float], None]


def new_request_id() -> str:
    return secrets.token_hex(8)


class AccessLog:
    def __init__(
        self,
        app: AsgiApp,
        url_map: Map,
        *,
        enabled: bool = True,
        observe: Observer | None = None,
    ) -> None:
        self._app = app
        self._urls = url_map
        self._enabled = enabled
        self._observe = observe

    def route(self, path: str, method: str) -> str:
        """The template of the route ``path`` matches (``UNMATCHED`` if none)."""
        try:
            rule, _ = self._urls.bind("").match(path, method, return_rule=True)
        except HTTPException:
            return UNMATCHED
        return str(rule.rule)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = new_request_id()
        started = time.perf_counter()
        status = 0
        sent = 0
        header = (b"x-request-id", request_id.encode())

        async def send_counted(message: Any) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        with open_context(request_id=request_id) as context:
            try:
                await self._app(scope, receive, send_counted)
            finally:
                seconds = time.perf_counter() - started
                method = scope["method"]
                route = self.route(scope["path"], method)
                # No response started: the client went away or the server failed.
                status = status or 499
                if self._observe is not None:
                    self._observe(route, method, status, seconds)
                if self._enabled:
                    client = scope.get("client")
                    address = str(client[0]) if client else "-"
                    log.info(
                        "%s %s %d %.1fms %dB %s user=%s",
                        method,
                        route,
                        status,
                        seconds * 1000,
                        sent,
                        address,
                        context.get("user_id", "-"),
                        extra={
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(seconds * 1000, 3),
                            "bytes": sent,
                            "client": address,
                        },
                    )
