"""Access tokens for chaos devices that run longer than a token lives.

Access tokens live ``auth.access_ttl_s`` (15 minutes by default); a session
whose token expires without an AUTH is closed with 4007 after the grace
period, and a HELLO with an expired token is refused ``unauthorized``
(protocol/SPEC.md §5.1, §5.3, §6). A device of a long run (the soak) therefore
renews its tokens the way the SDK does: `sandcat.client.RefreshingCredentials`
(a new pair a while before expiry, refreshes serialised because the refresh
token rotates), presenting the new access token with AUTH on its live link
and with HELLO on the next one.

What the SDK's one-server `HttpApi` cannot do here is fail over: an instance
may be SIGKILLed by the fault schedule in the middle of a refresh. So the
refresh is tried on each instance in turn, and when the refresh token is
refused (its rotation committed but the answer was lost, and the retry then
counted as a reuse, which ends the session) the device logs in again with its
password, as a user would.
"""

from __future__ import annotations

import httpx
import trio

from sandcat.client import RefreshingCredentials
from sandcat.client.http import Tokens

#: Deadline of one refresh or login request.
REQUEST_TIMEOUT_S = 10.0
#: Rounds over all instances before a renewal is given up (the caller retries later).
ROUNDS = 3
#: Refresh and login requests in flight at once, over all devices.
CONCURRENCY = 16


class TokenUnavailable(Exception):
    """No instance gave a new token (all down or all failing); try again later."""


class TokenSource:
    """One HTTP client that renews the tokens of many devices on any instance.

    Use as an async context manager; ``credentials`` gives one device's
    `RefreshingCredentials`."""

    def __init__(self, http_urls: list[str], password: str) -> None:
        self.urls = http_urls
        self.password = password
        self.refreshes = 0
        self.logins = 0
        self.failures = 0
        # Few requests at a time, each bounded by httpx's own timeouts and never
        # cancelled from outside: 2,000 devices renewing at once through one pool,
        # with deadlines cancelling requests in flight, left the pool hung for good
        # (no refresh ever completed in the soak's idle process).
        self._http = httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT_S, limits=httpx.Limits(max_connections=CONCURRENCY)
        )
        self._limit = trio.CapacityLimiter(CONCURRENCY)
        self._next = 0

    async def __aenter__(self) -> TokenSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def credentials(self, login: str, device: str, tokens: Tokens) -> RefreshingCredentials:
        """Credentials for one device, starting from the tokens of its login."""
        # RefreshingCredentials only calls ``refresh`` on its API.
        return RefreshingCredentials(_DeviceAuth(self, login, device), tokens)  # type: ignore[arg-type]

    async def post(self, path: str, body: dict[str, str]) -> httpx.Response | None:
        """POST to the instances in turn until one answers (None if none did)."""
        for _ in range(ROUNDS * len(self.urls)):
            url = self.urls[self._next % len(self.urls)]
            try:
                async with self._limit:
                    with trio.CancelScope(shield=True):
                        reply = await self._http.post(f"{url}/api/v1{path}", json=body)
            except httpx.TransportError:
                reply = None
            if reply is not None and reply.status_code < 500 and reply.status_code != 429:
                return reply
            self._next += 1
            await trio.sleep(0.2)
        return None


class _DeviceAuth:
    """The refresh of one device (the part of `HttpApi` RefreshingCredentials uses)."""

    def __init__(self, source: TokenSource, login: str, device: str) -> None:
        self._source, self._login, self._device = source, login, device

    async def refresh(self, refresh_token: str) -> Tokens:
        source = self._source
        reply = await source.post("/auth/refresh", {"refresh_token": refresh_token})
        if reply is not None and reply.status_code == 200:
            source.refreshes += 1
            return Tokens.from_json(reply.json())
        if reply is not None and reply.status_code == 401:
            # The refresh token is spent or its session ended: log in again.
            body = {"login": self._login, "password": source.password, "device": self._device}
            reply = await source.post("/auth/login", {**body, "platform": "t"})
            if reply is not None and reply.status_code == 200:
                source.logins += 1
                return Tokens.from_json(reply.json())
        source.failures += 1
        status = None if reply is None else reply.status_code
        raise TokenUnavailable(f"{self._login}/{self._device}: no new token (HTTP {status})")
