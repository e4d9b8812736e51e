"""Time-limited TURN credentials in the coturn REST API format.

coturn's ``use-auth-secret`` mode (draft-uberti-behave-turn-rest): the
username is ``"<expiry unix seconds>:<user id>"`` and the password is
``base64(HMAC-SHA1(static-auth-secret, username))``. coturn recomputes it
and refuses it after the expiry, so the server stores nothing. Configured
with ``[calls] turn_secret`` and ``turn_urls``; without them there are no
credentials to hand out (``NotFound``: this server offers no TURN relay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.config import CallsConfig
from sandcat.errors import NotFound


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    username: str
    credential: str
    ttl_s: int
    uris: tuple[str, ...]


class TurnRelay:
    def __init__(self, config: CallsConfig, *, clock: Clock) -> None:
        self._secret = config.turn_secret.encode()
        self._uris = tuple(uri.strip() for uri in config.turn_urls.split(",") if uri.strip())
        self._ttl_s = config.turn_ttl_s
        self._clock = clock

    def credentials(self, user: str) -> TurnCredentials:
        """Credentials for ``user`` valid for ``turn_ttl_s``; ``NotFound`` if not configured."""
        if not self._secret or not self._uris:
            raise NotFound("this server hands out no TURN credentials (calls.turn_secret unset)")
        expires_s = self._clock() // 1000 + self._ttl_s
        username = f"{expires_s}:{user}"
        digest = hmac.new(self._secret, username.encode(), hashlib.sha1).digest()
        return TurnCredentials(
            username=username,
            credential=base64.b64encode(digest).decode(),
            ttl_s=self._ttl_s,
            uris=self._uris,
        )
