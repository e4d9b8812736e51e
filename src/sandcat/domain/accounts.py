"""Accounts: registration, login, tokens, sessions and credentials.

A session is one login on one device; its id is the refresh-token family
(see ``sandcat.store.accounts``), so it survives refreshes. Every access
token names its session, and ``authenticate`` checks that the session is
still live and the user not disabled, so logout and revocation take effect
for HTTP at once; the API closes the session's sockets (4007) as well.

Methods that end sessions return the ended session ids, so the caller can
close their sockets.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.config import AuthConfig
from sandcat.domain._text import display_text
from sandcat.domain.avatars import default_avatar
from sandcat.domain.codes import VerificationCodes, normalize_email
from sandcat.domain.keyring import KeyRing
from sandcat.domain.passwords import MAX_PASSWORD, PasswordHasher, check_password_policy
from sandcat.domain.tokens import Tokens
from sandcat.errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from sandcat.ids import new_id, parse_id
from sandcat.logs import add_context
from sandcat.store.accounts import AccountStore, Session, SessionInfo, User
from sandcat.store.cache import Cache, LocalCache
from sandcat.store.lockout import LockoutPolicy
from sandcat.store.ratelimit import Limiters, LocalLimiters, address_key

log = logging.getLogger(__name__)
#: Login outcomes at INFO (never a password, token or code; a failed login's name is
#: not logged either: people type their password into it).
auth_log = logging.getLogger("sandcat.auth")

#: Usernames are case-insensitive: typed in any case, stored lower-cased
#: (protocol/SPEC.md §13: [a-z0-9_.]); display names keep whatever case people like.
_USERNAME = re.compile(r"[A-Za-z0-9_.]{3,32}")
_PLATFORM = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: E.164 after removing spaces, dots, dashes and parentheses.
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_PHONE_NOISE = re.compile(r"[\s().-]")
#: Longest ``login`` worth looking up: an email address (RFC 5321 path limit).
_MAX_LOGIN = 254
#: Refresh tokens we issue are 43 characters; anything much longer is not ours.
_MAX_REFRESH = 256
_BAD_LOGIN = "invalid login or password"


def session_key(user: str, session: str) -> str:
    """The liveness cache's key of a session (``Accounts.authenticate``)."""
    return f"session:{user}:{session}"


def normalize_phone(value: str, *, field: str = "phone") -> str:
    """``+`` and digits (E.164); ``BadRequest`` naming ``field`` otherwise."""
    phone = _PHONE_NOISE.sub("", value)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not _PHONE.fullmatch(phone):
        raise BadRequest(f"{field}: must be an international number like +15551234567", field=field)
    return phone


def check_device(device: str | None, platform: str | None) -> tuple[str, str]:
    """The device id (fresh if None) and platform (``unknown`` if None) of a login."""
    device = new_id() if device is None else parse_id(device, field="device")
    platform = "unknown" if platform is None else platform
    if not _PLATFORM.fullmatch(platform):
        raise BadRequest("platform: must be 1-32 of A-Za-z0-9_.-", field="platform")
    return device, platform


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request or socket."""

    user: str
    device: str
    session: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    #: Seconds until the access token expires.
    expires_in: int


@dataclass(frozen=True, slots=True)
class Login:
    tokens: TokenPair
    user: User
    principal: Principal


class TokenReused(Unauthorized):
    """A rotated refresh token came back; its whole session has been revoked.

    The caller should close the session's sockets (``user``, ``session``).
    """

    def __init__(self, *, user: str, session: str) -> None:
        super().__init__("invalid refresh token")
        self.user = user
        self.session = session


class Accounts:
    """The account use cases over an ``AccountStore``."""

    def __init__(
        self,
        store: AccountStore,
        *,
        config: AuthConfig,
        secret: KeyRing | bytes,
        clock: Clock,
        codes: VerificationCodes | None = None,
        limiters: Limiters | None = None,
        sessions: Cache | None = None,
        passwords: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._codes = codes
        self._tokens = Tokens(secret, access_ttl_s=config.access_ttl_s, clock=clock)
        #: Sessions recently found live: at most one database query per session per
        #: ``session_cache_ms``. Every revocation here deletes its entries; one made
        #: elsewhere (or a delete that failed) is seen within ``session_cache_ms``.
        self._live = sessions or LocalCache(clock)
        self._live_ms = config.session_cache_ms
        self._passwords = passwords or PasswordHasher.from_config(config)
        window = config.login_window_s
        limiters = limiters or LocalLimiters(clock)
        #: Per account (``user:ID``), or per normalised login when no account has it:
        #: every spelling of one phone number or email counts against the same key.
        self._lockout = limiters.lockout(
            "login-lockout",
            LockoutPolicy(
                free=config.login_failures,
                base_ms=round(config.login_lockout_s * 1000),
                max_ms=round(config.login_lockout_max_s * 1000),
                window_ms=round(window * 1000),
            ),
        )
        #: Failures only: many people logging in behind one address lock nobody out.
        self._address_failures = limiters.limiter(
            "login-failures-ip", limit=config.login_failures_per_ip, window_s=window
        )
        self._registrations = limiters.limiter(
            "registrations-ip",
            limit=config.registrations_per_ip,
            window_s=config.registration_window_s,
        )

    async def register(
        self,
        *,
        username: str,
        password: str,
        email: str | None = None,
        phone: str | None = None,
        display_name: str | None = None,
        code: str | None = None,
        ip: str | None = None,
    ) -> User:
        """Create an account. Raises ``BadRequest`` naming the bad field (a wrong
        or missing ``code`` while email verification is on included),
        ``Conflict`` (field ``username``, or ``email`` for a verified one) for a
        taken one, and ``RateLimited`` past ``registrations_per_ip`` attempts
        from ``ip`` (counted once the fields pass their checks, before hashing).

        A ``phone``, and an ``email`` while email verification is off, are not
        stored yet: a code goes to each (``VerificationCodes.send_contact_code``)
        and the user adds them with it (``Profiles.update``), so registering
        neither claims someone else's number or address nor tells whether one
        is taken."""
        if not _USERNAME.fullmatch(username):
            raise BadRequest("username: must be 3-32 of a-z, 0-9, '_' and '.'", field="username")
        typed, username = username, username.lower()
        check_password_policy(password, username=username)
        if email is not None:
            email = normalize_email(email)
        if phone is not None:
            phone = normalize_phone(phone)
        name = display_text(
            typed if display_name is None else display_name,
            field="display_name",
            low=1,
            high=64,
        )
        wait = await self._registrations.take(address_key(ip))
        if wait:
            raise RateLimited("too many registrations from this address; wait", retry_after_ms=wait)
        if self._config.email_verification:
            if email is None:
                raise BadRequest("email: required (email verification is on)", field="email")
            if self._codes is None:  # pragma: no cover - app.py always wires codes
                raise BadRequest("code: verification is not available", field="code")
            await self._codes.redeem(email, "register", code)
        now = self._clock()
        user_id = new_id()
        user = User(
            id=user_id,
            username=username,
            display_name=name,
            password_hash=await self._passwords.hash(password),
            email=email if self._config.email_verification else None,
            avatar=default_avatar(user_id),
            phone=None,
            created_at=now,
            updated_at=now,
        )
        await self._store.create_user(user)
        pending = {"phone": phone, "email": None if user.email else email}
        for kind, address in pending.items():
            if address is not None and self._codes is not None:
                try:
                    await self._codes.send_contact_code(user_id, ip=ip, **{kind: address})
                except RateLimited:
                    # The account exists; the user asks for a code again later.
                    log.info("registration of %s: no %s code (rate limited)", user_id, kind)
        return user

    async def login(
        self,
        *,
        login: str,
        password: str,
        device: str | None = None,
        platform: str | None = None,
        ip: str | None = None,
    ) -> Login:
        """Check the password and open a new session.

        Without ``device`` the session gets a fresh device id, so two such logins
        never replace each other. An unknown login and a wrong password give the
        same ``Unauthorized`` after the same amount of hashing work. An account
        locked by failures (under any of its logins), or an address with too
        many failures, gives ``RateLimited`` whatever the password.
        """
        device, platform = check_device(device, platform)
        address = ip or "?"
        wait = await self._address_failures.retry_after_ms(address_key(ip))
        if wait:
            auth_log.info(
                "login refused (rate limit): too many failed logins from %s",
                address,
                extra={"event": "login_refused", "reason": "address", "client": address},
            )
            raise RateLimited("too many failed logins from this address; wait", retry_after_ms=wait)
        name = self._login_key(login.strip().lower())
        sane = 1 <= len(name) <= _MAX_LOGIN and len(password) <= MAX_PASSWORD
        user = None
        if sane and name.isprintable():
            user = await self._store.find_login(self._login_key(login.strip()))
        key = f"login:{name}" if user is None else f"user:{user.id}"
        known = "-" if user is None else user.id
        wait = await self._lockout.retry_after_ms(key)
        if wait:
            auth_log.info(
                "login refused (rate limit): account %s locked after failed logins, from %s",
                known,
                address,
                extra={"event": "login_refused", "reason": "locked", "client": address},
            )
            raise RateLimited("too many failed logins; wait", retry_after_ms=wait)
        ok = sane and await self._passwords.verify(
            None if user is None else user.password_hash, password
        )
        if user is None or not ok:
            await self._lockout.fail(key)
            await self._address_failures.hit(address_key(ip))
            auth_log.info(
                "login failed: %s from %s",
                "unknown login" if user is None else f"wrong password for user {user.id}",
                address,
                extra={"event": "login_failed", "client": address, "account": known},
            )
            raise Unauthorized(_BAD_LOGIN)
        await self._lockout.reset(key)
        rehash = None
        if self._passwords.needs_rehash(user.password_hash):
            rehash = await self._passwords.hash(password)
        try:
            done = await self.open_session(
                user, device=device, platform=platform, ip=ip, rehash=rehash
            )
        except Forbidden:
            auth_log.info(
                "login refused: user %s is disabled, from %s",
                user.id,
                address,
                extra={"event": "login_refused", "reason": "disabled", "client": address},
            )
            raise
        add_context(user_id=user.id, device=done.principal.device)
        auth_log.info(
            "login ok: user %s device %s from %s",
            user.id,
            done.principal.device,
            address,
            extra={"event": "login_ok", "account": user.id, "client": address},
        )
        return done

    async def open_session(
        self,
        user: User,
        *,
        device: str | None,
        platform: str | None,
        ip: str | None,
        rehash: str | None = None,
    ) -> Login:
        """Open a session for a user whose identity was proven (password, OAuth).

        ``Forbidden`` for a disabled account; ``BadRequest`` for a bad device or platform.
        """
        device, platform = check_device(device, platform)
        if user.disabled:
            raise Forbidden("this account is disabled")
        now = self._clock()
        refresh = self._tokens.new_refresh()
        session = Session(
            id=new_id(),
            family=new_id(),
            user=user.id,
            device=device,
            platform=platform,
            refresh_hash=self._tokens.hash_refresh(refresh),
            created_at=now,
            expires_at=now + self._config.refresh_ttl_s * 1000,
            ip=ip,
        )
        await self._store.start_session(session, rehash=rehash)
        pair, principal = self._issue(user.id, device, session.family, refresh)
        return Login(pair, user, principal)

    async def unusable_password(self) -> str:
        """A hash no password matches in practice (accounts made by OAuth login)."""
        return await self._passwords.hash(secrets.token_urlsafe(32))

    @staticmethod
    def _login_key(login: str) -> str:
        """What to look ``login`` up by: a phone number in its normal form."""
        if login[:1] == "+" or login[:2] == "00":
            try:
                return normalize_phone(login)
            except BadRequest:
                return login
        return login

    async def refresh(self, refresh_token: str, *, ip: str | None = None) -> TokenPair:
        """Trade a refresh token for new tokens; the presented one stops working.

        Raises ``TokenReused`` if the token had already been used (the session is
        then revoked) and ``Unauthorized`` if it is unknown or expired.
        """
        if not 1 <= len(refresh_token) <= _MAX_REFRESH:
            raise Unauthorized("invalid refresh token")
        now = self._clock()
        refresh = self._tokens.new_refresh()
        rotation = await self._store.rotate_session(
            self._tokens.hash_refresh(refresh_token),
            new_id=new_id(),
            new_hash=self._tokens.hash_refresh(refresh),
            now_ms=now,
            expires_at_ms=now + self._config.refresh_ttl_s * 1000,
            ip=ip,
        )
        session = rotation.session
        if rotation.outcome == "reused" and session is not None:
            await self._forget(session.user, [session.family])
            raise TokenReused(user=session.user, session=session.family)
        if rotation.outcome != "rotated" or session is None:
            raise Unauthorized("invalid refresh token")
        pair, _ = self._issue(session.user, session.device, session.family, refresh)
        return pair

    async def logout(self, principal: Principal) -> None:
        """Revoke the principal's session: its refresh and access tokens stop working."""
        await self._store.revoke_session(principal.user, principal.session, now_ms=self._clock())
        await self._forget(principal.user, [principal.session])

    async def logout_everywhere(self, principal: Principal) -> list[str]:
        """Revoke every session of the principal's user, this one included."""
        ended = await self._store.revoke_all(principal.user, now_ms=self._clock())
        return await self._forget(principal.user, [*ended, principal.session])

    async def _forget(self, user: str, sessions: list[str]) -> list[str]:
        """Drop ended sessions from the liveness cache; returns ``sessions``."""
        await self._live.delete([session_key(user, session) for session in sessions])
        return sessions

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid access token whose session is live and whose
        user is not disabled; ``Unauthorized`` otherwise."""
        claims = self._tokens.decode_access(token)
        key = session_key(claims.user, claims.session)
        if self._live_ms and await self._live.get(key) == b"1":
            return Principal(claims.user, claims.device, claims.session, claims.expires_at_ms)
        if not await self._store.is_session_active(claims.user, claims.session):
            raise Unauthorized("session revoked")
        if self._live_ms:
            await self._live.put(key, b"1", ttl_ms=self._live_ms)
        return Principal(claims.user, claims.device, claims.session, claims.expires_at_ms)

    async def is_session_live(self, user: str, session: str) -> bool:
        """Whether ``session`` of ``user`` is live (not revoked, expired or disabled)."""
        return await self._store.is_session_active(user, session)

    async def get_user(self, user_id: str) -> User:
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def sessions(self, user: str) -> list[SessionInfo]:
        """The live sessions (devices) of ``user``."""
        return await self._store.list_sessions(user, now_ms=self._clock())

    async def live_devices(self, user: str) -> list[str]:
        return sorted({session.device for session in await self.sessions(user)})

    async def revoke(self, user: str, session: str) -> None:
        """End one of ``user``'s sessions; ``NotFound`` if it is not a live one of theirs."""
        session = parse_id(session, field="id")
        if not await self._store.revoke_session(user, session, now_ms=self._clock()):
            raise NotFound("no such session")
        await self._forget(user, [session])

    async def change_password(self, principal: Principal, *, current: str, new: str) -> list[str]:
        """Needs the current password; ends every other session (returned)."""
        user = await self.get_user(principal.user)
        await self._check_password(user, current, field="current_password")
        check_password_policy(new, username=user.username, field="new_password")
        ended = await self._store.set_password(
            user.id, await self._passwords.hash(new), keep=principal.session, now_ms=self._clock()
        )
        return await self._forget(user.id, ended)

    async def reset_password(
        self, *, email: str, code: str | None, new: str
    ) -> tuple[str, list[str]]:
        """Set a new password with an emailed code; ends every session.

        Returns the user id and the ended sessions. A wrong code and an unknown
        email give the same ``BadRequest`` (field ``code``).
        """
        email = normalize_email(email)
        if self._codes is None:  # pragma: no cover - app.py always wires codes
            raise BadRequest("code: verification is not available", field="code")
        check_password_policy(new, field="new_password")
        await self._codes.redeem(email, "reset", code)
        user = await self._store.find_login(email)
        if user is None or user.email != email or user.disabled:
            # The code was issued to a registered address; it is gone since.
            raise BadRequest("code: invalid or expired; ask for a new one", field="code")
        check_password_policy(new, username=user.username, field="new_password")
        ended = await self._store.set_password(
            user.id, await self._passwords.hash(new), keep=None, now_ms=self._clock()
        )
        return user.id, await self._forget(user.id, ended)

    async def disable(self, principal: Principal, *, password: str) -> list[str]:
        """Disable the caller's account (needs the password); ends every session."""
        user = await self.get_user(principal.user)
        await self._check_password(user, password, field="password")
        return await self._forget(user.id, await self._store.disable(user.id, now_ms=self._clock()))

    async def _check_password(self, user: User, password: str, *, field: str) -> None:
        key = f"user:{user.id}"
        wait = await self._lockout.retry_after_ms(key)
        if wait:
            raise RateLimited("too many wrong passwords; wait", retry_after_ms=wait)
        if len(password) > MAX_PASSWORD or not await self._passwords.verify(
            user.password_hash, password
        ):
            await self._lockout.fail(key)
            raise Forbidden(f"{field}: incorrect password", field=field)

    def _issue(
        self, user: str, device: str, session: str, refresh: str
    ) -> tuple[TokenPair, Principal]:
        access = self._tokens.issue_access(user=user, device=device, session=session)
        pair = TokenPair(access.token, refresh, self._config.access_ttl_s)
        return pair, Principal(user, device, session, access.expires_at_ms)
