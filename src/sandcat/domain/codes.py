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
from sandcat.errors import BadRequest, RateLimited
from sandcat.mail import CodeTemplates, Mail
from sandcat.store.accounts import CodeStore, UserStore
from sandcat.store.ratelimit import Limiters, LocalLimiters, address_key
from sandcat.texts import TextMessage, TextSender

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
        texts: TextSender | None = None,
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
        self._per_user = limiters.limiter(
            "contact-codes-per-user",
            limit=config.contact_codes_per_user,
            window_s=config.code_window_s,
        )
        self._texts = texts

    def _hash(self, email: str, purpose: str, code: str) -> str:
        message = f"{purpose}\0{email}\0{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def request(self, email: str, purpose: str, *, ip: str | None) -> None:
        """Send a code to ``email`` if that makes sense for ``purpose``; the same
        outcome either way. ``RateLimited`` per email and per client address."""
        email = normalize_email(email)
        if purpose not in PURPOSES:
            raise BadRequest("purpose: must be register or reset", field="purpose")
        for limiter, key in ((self._per_ip, address_key(ip)), (self._per_email, email)):
            wait = await limiter.retry_after_ms(key)
            if wait:
                raise RateLimited("too many codes requested; wait", retry_after_ms=wait)
        await self._per_ip.hit(address_key(ip))
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

    async def send_contact_code(
        self, user: str, *, email: str | None = None, phone: str | None = None, ip: str | None
    ) -> None:
        """Send ``user`` a code to the new ``email`` or ``phone`` (normalised), which
        becomes theirs only once they give the code back (``redeem_contact``).

        Whether the address belongs to someone else is not revealed here: an
        email already taken gets a notice instead of a code (its owner learns
        someone tried it), a taken number gets its code (the change fails with
        ``Conflict`` only after its owner proved to hold it). ``RateLimited``
        per user, per address or number, and per client address."""
        address = email if email is not None else phone
        if address is None:  # pragma: no cover - callers pass one
            raise BadRequest("email or phone: required")
        limits = (
            (self._per_user, user),
            (self._per_ip, address_key(ip)),
            (self._per_email, address),
        )
        for limiter, key in limits:
            wait = await limiter.retry_after_ms(key)
            if wait:
                raise RateLimited("too many codes requested; wait", retry_after_ms=wait)
        for limiter, key in limits:
            await limiter.hit(key)
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = self._clock()
        purpose = f"contact:{user}"
        await self._store.put_code(
            address,
            purpose,
            self._hash(address, purpose, code),
            expires_at_ms=now + self._config.code_ttl_s * 1000,
            now_ms=now,
        )
        minutes = max(1, self._config.code_ttl_s // 60)
        if phone is not None:
            if self._texts is None:  # pragma: no cover - app.py always wires a sender
                raise BadRequest("phone: text messages are not available", field="phone")
            await self._texts.send(
                TextMessage(
                    to=phone,
                    text=f"Your Sandcat code is {code}. It expires in {minutes} minutes.",
                )
            )
            return
        assert email is not None
        holder = await self._store.find_login(email)
        if holder is not None and holder.email == email and holder.id != user:
            self._mailbox.post(_taken_notice(email))
            return
        self._mailbox.post(
            self._templates.render(to=email, code=code, purpose="contact", minutes=minutes)
        )

    async def redeem_contact(self, user: str, address: str, code: str, *, field: str) -> None:
        """Use up ``user``'s code for ``address``; ``BadRequest`` naming ``field``
        if it is not the live one."""
        purpose = f"contact:{user}"
        if _CODE.fullmatch(code) is None or not await self._store.take_code(
            address,
            purpose,
            self._hash(address, purpose, code),
            now_ms=self._clock(),
            max_attempts=self._config.code_max_attempts,
        ):
            raise BadRequest(f"{field}: invalid or expired; ask for a new one", field=field)


def _taken_notice(email: str) -> Mail:
    text = (
        "Someone asked to use this address for a new Sandcat account or to add it\n"
        "to an account. It already belongs to your account, so nothing changed.\n"
        "If this was you, log in (or reset your password) instead.\n"
    )
    return Mail(
        to=email,
        subject="Your address was used on Sandcat",
        text=text,
        html="<!doctype html><html><body><p>" + text.replace("\n", "<br>") + "</p></body></html>",
    )
