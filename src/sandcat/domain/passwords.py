"""Password hashing: argon2id, run in worker threads so the event loop never stalls.

OWASP's minimum for argon2id is m = 19 MiB, t = 2, p = 1; the configuration
cannot go below it. Verifying a login for an unknown user still runs one
verification (against a dummy hash with the same parameters), so a failed
login takes about the same time whether or not the user exists (ASVS 6.3.8).
"""

from __future__ import annotations

import secrets
from importlib import resources

import trio
from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from sandcat.config import AuthConfig
from sandcat.errors import BadRequest


class PasswordHasher:
    """Hashes and verifies passwords with argon2id at a given cost.

    The server builds one from the configuration (``from_config``), whose bounds keep
    the cost at or above OWASP's minimum. The composition root accepts another
    instance, so a test suite can run thousands of logins at a cheaper cost while the
    production parameters are tested on their own.
    """

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._argon2 = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=1,
            type=Type.ID,
        )
        self._dummy: str | None = None

    @classmethod
    def from_config(cls, config: AuthConfig) -> PasswordHasher:
        """The hasher at the configured cost (never below OWASP's minimum)."""
        return cls(time_cost=config.argon2_time_cost, memory_kib=config.argon2_memory_kib)

    async def hash(self, password: str) -> str:
        """The encoded argon2id hash of ``password`` (with a fresh random salt)."""
        return await trio.to_thread.run_sync(self._argon2.hash, password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Whether ``password`` matches ``encoded``; ``None`` (no such user) never matches."""
        if encoded is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            await trio.to_thread.run_sync(self._check, self._dummy, password)
            return False
        return await trio.to_thread.run_sync(self._check, encoded, password)

    def needs_rehash(self, encoded: str) -> bool:
        """True if ``encoded`` was made with other (older, weaker) parameters."""
        try:
            return self._argon2.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    def _check(self, encoded: str, password: str) -> bool:
        try:
            return self._argon2.verify(encoded, password)
        except (VerificationError, InvalidHashError):
            return False


def _common() -> frozenset[str]:
    text = resources.files("sandcat.domain").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


#: Refused as passwords (ASVS 6.2.4), compared case-insensitively.
COMMON_PASSWORDS = _common()
MIN_PASSWORD, MAX_PASSWORD = 8, 128


def check_password_policy(password: str, *, username: str = "", field: str = "password") -> None:
    """``BadRequest`` naming ``field`` unless ``password`` is 8-128 characters, not
    a common password and not the username. Taken exactly as typed (ASVS 6.2.1)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"{field}: must be {MIN_PASSWORD}-{MAX_PASSWORD} characters", field=field)
    folded = password.lower()
    if folded in COMMON_PASSWORDS or (username and folded == username.lower()):
        raise BadRequest(f"{field}: too common or too easy to guess", field=field)
