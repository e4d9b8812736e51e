"""Signed download links: short-lived URLs that need no bearer token.

A link names the file, the variant (``content`` or ``thumbnail``) and an
expiry time, and carries an HMAC-SHA256 of the three under a key derived
from the current token signing key; every key the ``KeyRing`` still accepts
verifies (a rotation does not break live links). A changed byte or a past
expiry gives 403.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.domain.keyring import KeyRing
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
    def __init__(self, keys: KeyRing | bytes, *, ttl_s: int, clock: Clock) -> None:
        if isinstance(keys, bytes):
            keys = KeyRing.fixed(keys, clock=clock)
        self._keys = keys
        self._ttl_ms = ttl_s * 1000
        self._clock = clock

    @staticmethod
    def _sign(secret: bytes, file_id: str, variant: str, expires: int) -> str:
        key = hmac.new(secret, b"sandcat file links v1", hashlib.sha256).digest()
        message = f"{file_id}\n{variant}\n{expires}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()[:_SIG_HEX]

    def sign(self, file_id: str, variant: str) -> SignedLink:
        expires = self._clock() + self._ttl_ms
        sig = self._sign(self._keys.current().secret, file_id, variant, expires)
        return SignedLink(f"/api/v1/files/{file_id}/{variant}?expires={expires}&sig={sig}", expires)

    def verify(self, file_id: str, variant: str, expires: str, sig: str) -> None:
        """``Forbidden`` unless ``sig`` signs these values and ``expires`` is in the future."""
        # isdigit() alone takes "²" and other digits int() refuses: ASCII only.
        if not (expires.isascii() and expires.isdigit() and len(expires) <= _MAX_EXPIRES_DIGITS):
            raise Forbidden("bad signed link")
        given = sig.encode("utf-8", "replace")
        signatures = (
            self._sign(key.secret, file_id, variant, int(expires)).encode()
            for key in self._keys.accepted()
        )
        if not any(hmac.compare_digest(expected, given) for expected in signatures):
            raise Forbidden("bad signed link")
        if int(expires) <= self._clock():
            raise Forbidden("the signed link has expired")
