"""Email verification codes: 6 digits, short-lived, single use, throttled.

Asking for a code always gets the same answer after the same work, whether or
not the address is registered (or, for registration, already taken): a code
is stored either way, and mailed (by the postman, after the answer) only when
it makes sense. Codes are stored as an HMAC under the server's key, never in
clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Literal, Protocol

from sandcat.clock import Clock
from sandcat.config import AuthConfig
from sandcat.domain.keyring import KeyRing
from sandcat.domain.ratelimit import Limiters, LocalLimiters
from sandcat.errors import BadRequest, RateLimited
from sandcat.mail import CodeTemplates, Mail
from sandcat.store.accounts import CodeStore, UserStore

Purpose = Literal["register", "reset"]
PURPOSES: tuple[Purpose, ...] = ("register", "reset")
# No whitespace or control characters (PostgreSQL text cannot even hold NUL).
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+")
#: RFC 5321: a forward path is at most 256 octets, so an address at most 254.
MAX_EMAIL = 254
_CODE = re.compile(r"[0-9]{6}")


def normalize_email(value: str, *, field: str = "email") -> str:
    """The address stripped and lower-cased; ``BadRequest`` naming ``field`` if invalid."""
    email = value.strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise BadRequest(f"{field}: not a valid email address", field=field)
    return email


class Mailbox(Protocol):
    def post(self, mail: Mail) -> None:
        """Queue a mail; never blocks."""


class Store(CodeStore, UserStore, Protocol):
    pass


class VerificationCodes:
    def __init__(
        self,
        store: Store,
        *,
        config: AuthConfig,
        secret: KeyRing | bytes,
        clock: Clock,
        mailbox: Mailbox,
        templates: CodeTemplates,
        limiters: Limiters | None = None,
    ) -> None:
        self._store = store
        self._config = config
        # The ring's first key never changes (a rotation adds keys): a code
        # requested before a rotation is still redeemed after it.
        self._secret = secret.first.secret if isinstance(secret, KeyRing) else secret
        self._clock = clock
        self._mailbox = mailbox
        self._templates = templates
        limiters = limiters or LocalLimiters(clock)
        self._per_email = limiters.limiter(
            "codes-per-email", limit=config.codes_per_email, window_s=config.code_window_s
        )
        self._per_ip = limiters.limiter(
            "codes-per-ip", limit=config.codes_per_ip, window_s=config.code_window_s
        )

    def _hash(self, email: str, purpose: str, code: str) -> str:
        message = f"{purpose}\0{email}\0{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def request(self, email: str, purpose: str, *, ip: str | None) -> None:
        """Send a code to ``email`` if that makes sense for ``purpose``; the same
        outcome either way. ``RateLimited`` per email and per client address."""
        email = normalize_email(email)
        if purpose not in PURPOSES:
            raise BadRequest("purpose: must be register or reset", field="purpose")
        for limiter, key in ((self._per_ip, ip or "?"), (self._per_email, email)):
            wait = await limiter.retry_after_ms(key)
            if wait:
                raise RateLimited("too many codes requested; wait", retry_after_ms=wait)
        await self._per_ip.hit(ip or "?")
        await self._per_email.hit(email)
        user = await self._store.find_login(email)
        registered = user is not None and user.email == email
        sensible = (purpose == "register") != registered and not (
            user is not None and user.disabled
        )
        # A code is stored either way, so both paths do the same work and take
        # the same time; only a sensible one is mailed (an unmailed code is
        # known to nobody, and the step it would unlock fails anyway).
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = self._clock()
        await self._store.put_code(
            email,
            purpose,
            self._hash(email, purpose, code),
            expires_at_ms=now + self._config.code_ttl_s * 1000,
            now_ms=now,
        )
        if sensible:
            minutes = max(1, self._config.code_ttl_s // 60)
            self._mailbox.post(
                self._templates.render(to=email, code=code, purpose=purpose, minutes=minutes)
            )

    async def redeem(self, email: str, purpose: Purpose, code: str | None) -> None:
        """Use up the code; ``BadRequest`` (field ``code``) if it is not the live one."""
        if code is None:
            raise BadRequest("code: required", field="code")
        if _CODE.fullmatch(code) is None or not await self._store.take_code(
            email,
            purpose,
            self._hash(email, purpose, code),
            now_ms=self._clock(),
            max_attempts=self._config.code_max_attempts,
        ):
            raise BadRequest("code: invalid or expired; ask for a new one", field="code")
