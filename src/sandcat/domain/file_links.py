"""Signed download links: short-lived URLs that need no bearer token.

A link names the file, the variant (``content`` or ``thumbnail``) and an
expiry time, and carries an HMAC-SHA256 of the three under a key derived
from the server's token secret. A changed byte or a past expiry gives 403.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.errors import Forbidden

_SIG_HEX = 32  # 128 bits
_MAX_EXPIRES_DIGITS = 16


@dataclass(frozen=True, slots=True)
class SignedLink:
    path: str
    expires_at: int

    @property
    def url(self) -> str:
        return self.path


class FileLinks:
    def __init__(self, secret: bytes, *, ttl_s: int, clock: Clock) -> None:
        self._key = hmac.new(secret, b"sandcat file links v1", hashlib.sha256).digest()
        self._ttl_ms = ttl_s * 1000
        self._clock = clock

    def _sign(self, file_id: str, variant: str, expires: int) -> str:
        message = f"{file_id}\n{variant}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_SIG_HEX]

    def sign(self, file_id: str, variant: str) -> SignedLink:
        expires = self._clock() + self._ttl_ms
        sig = self._sign(file_id, variant, expires)
        return SignedLink(f"/api/v1/files/{file_id}/{variant}?expires={expires}&sig={sig}", expires)

    def verify(self, file_id: str, variant: str, expires: str, sig: str) -> None:
        """``Forbidden`` unless ``sig`` signs these values and ``expires`` is in the future."""
        if not (expires.isdigit() and len(expires) <= _MAX_EXPIRES_DIGITS):
            raise Forbidden("bad signed link")
        expected = self._sign(file_id, variant, int(expires))
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            raise Forbidden("bad signed link")
        if int(expires) <= self._clock():
            raise Forbidden("the signed link has expired")
