"""Access and refresh tokens.

Access tokens are JWTs signed with HS256, and only HS256 is accepted when
decoding (RFC 8725 §3.1: never let the token choose its algorithm). They
carry ``sub`` (user), ``dev`` (device), ``sid`` (session), ``iat`` and
``exp``; they live at most 15 minutes (``auth.access_ttl_s``). Expiry is
checked against the injected clock, not PyJWT's, so tests control time. The
header's ``kid`` names the signing key of the ``KeyRing`` (rotation); a token
without one was signed by the ring's oldest key.

Refresh tokens are 256 random bits, opaque to clients; only their SHA-256 is
stored, so a database leak does not hand out sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import jwt

from sandcat.clock import Clock
from sandcat.domain.keyring import KeyRing
from sandcat.errors import Unauthorized
from sandcat.ids import is_id

_ALGORITHM = "HS256"
#: Tolerated clock skew for ``iat`` in the future.
_SKEW_MS = 60_000
_REQUIRED = ("sub", "dev", "sid", "iat", "exp")


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user: str
    device: str
    session: str
    issued_at_ms: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at_ms: int


class Tokens:
    """Issues and checks access tokens; makes and hashes refresh tokens."""

    def __init__(self, keys: KeyRing | bytes, *, access_ttl_s: int, clock: Clock) -> None:
        if isinstance(keys, bytes):
            keys = KeyRing.fixed(keys, access_ttl_s=access_ttl_s, clock=clock)
        self._keys = keys
        self._ttl_ms = access_ttl_s * 1000
        self._clock = clock

    def issue_access(self, *, user: str, device: str, session: str) -> AccessToken:
        now_s = self._clock() // 1000
        expires_s = now_s + self._ttl_ms // 1000
        claims = {"sub": user, "dev": device, "sid": session, "iat": now_s, "exp": expires_s}
        key = self._keys.current()
        headers = {"kid": key.kid} if key.kid else None
        token = jwt.encode(claims, key.secret, algorithm=_ALGORITHM, headers=headers)
        return AccessToken(token, expires_s * 1000)

    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a valid, unexpired access token; ``Unauthorized`` otherwise."""
        try:
            # PyJWT refuses a ``kid`` that is not a string.
            key = self._keys.find(jwt.get_unverified_header(token).get("kid"))
            if key is None:
                raise Unauthorized("invalid access token")
            claims = jwt.decode(
                token,
                key.secret,
                algorithms=[_ALGORITHM],
                options={"require": list(_REQUIRED), "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid access token") from exc
        user, device, session = claims["sub"], claims["dev"], claims["sid"]
        issued, expires = claims["iat"], claims["exp"]
        if not (is_id(user) and isinstance(device, str) and is_id(session)):
            raise Unauthorized("invalid access token")
        if not (_is_int(issued) and _is_int(expires)):
            raise Unauthorized("invalid access token")
        now = self._clock()
        if expires * 1000 <= now or issued * 1000 > now + _SKEW_MS:
            raise Unauthorized("access token expired")
        return AccessClaims(user, device, session, issued * 1000, expires * 1000)

    @staticmethod
    def new_refresh() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_refresh(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
