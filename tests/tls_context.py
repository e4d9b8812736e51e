"""One default TLS context per test process for every ``httpx`` client.

An ``httpx`` client loads the CA bundle into a new ``SSLContext`` when it is
built (~25 ms of CPU here), even for an ``http://`` URL it will never use TLS
on; the suite builds thousands of clients. `share_default_tls` makes clients
built with httpx's defaults (``verify=True``, no client certificate) share one
context made by httpx itself. An ``SSLContext`` is meant to be shared, and
clients given their own ``verify=`` (the TLS tests) still get theirs.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from httpx._transports import default as transports

_create = httpx.create_ssl_context


def share_default_tls() -> None:
    shared = _create()

    def create_ssl_context(
        verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
    ) -> ssl.SSLContext:
        if verify is True and cert is None and trust_env:
            return shared
        return _create(verify=verify, cert=cert, trust_env=trust_env)

    transports.create_ssl_context = create_ssl_context  # type: ignore[assignment]
