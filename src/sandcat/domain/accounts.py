"""Accounts: registration, login, token refresh, logout and authentication.

A session is one login on one device; its id is the refresh-token family
(see ``sandcat.store.accounts``), so it survives refreshes. Every access
token names its session, and ``authenticate`` checks that the session is
still live and the user not disabled, so logout and revocation take effect
for HTTP at once and for sockets when the gateway next authenticates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.config import AuthConfig
from sandcat.domain._text import bounded
from sandcat.domain.avatars import default_avatar
from sandcat.domain.passwords import PasswordHasher
from sandcat.domain.tokens import Tokens
from sandcat.errors import BadRequest, Forbidden, NotFound, Unauthorized, Unavailable
from sandcat.ids import new_id, parse_id
from sandcat.store.accounts import AccountStore, Session, User

_USERNAME = re.compile(r"[a-z0-9_.]{3,32}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PLATFORM = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_MIN_PASSWORD, _MAX_PASSWORD = 8, 128
#: Longest ``login`` worth looking up: an email address (RFC 5321 path limit).
_MAX_LOGIN = 254
#: Refresh tokens we issue are 43 characters; anything much longer is not ours.
_MAX_REFRESH = 256
_BAD_LOGIN = "invalid login or password"


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
        self, store: AccountStore, *, config: AuthConfig, secret: bytes, clock: Clock
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._tokens = Tokens(secret, access_ttl_s=config.access_ttl_s, clock=clock)
        self._passwords = PasswordHasher(config)

    async def register(
        self,
        *,
        username: str,
        password: str,
        email: str | None = None,
        display_name: str | None = None,
        code: str | None = None,
    ) -> User:
        """Create an account. Raises ``BadRequest`` naming the bad field,
        ``Conflict`` (field ``username`` or ``email``) for a taken one, and
        ``Unavailable`` while email verification is on: codes are not built yet."""
        if self._config.email_verification:
            raise Unavailable("registration with email verification is not available yet")
        if not _USERNAME.fullmatch(username):
            raise BadRequest("username: must be 3-32 of a-z, 0-9, '_' and '.'", field="username")
        _check_password(password)
        if email is not None:
            email = email.strip().lower()
            if len(email) > _MAX_LOGIN or not _EMAIL.fullmatch(email):
                raise BadRequest("email: not a valid address", field="email")
        name = bounded(
            username if display_name is None else display_name,
            field="display_name",
            low=1,
            high=64,
        )
        now = self._clock()
        user_id = new_id()
        user = User(
            id=user_id,
            username=username,
            display_name=name,
            password_hash=await self._passwords.hash(password),
            email=email,
            avatar=default_avatar(user_id),
            created_at=now,
            updated_at=now,
        )
        await self._store.create_user(user)
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
        same ``Unauthorized`` after the same amount of hashing work.
        """
        device = new_id() if device is None else parse_id(device, field="device")
        platform = "unknown" if platform is None else platform
        if not _PLATFORM.fullmatch(platform):
            raise BadRequest("platform: must be 1-32 of A-Za-z0-9_.-", field="platform")
        if not 1 <= len(login) <= _MAX_LOGIN or len(password) > _MAX_PASSWORD:
            raise Unauthorized(_BAD_LOGIN)
        user = await self._store.find_login(login.strip())
        ok = await self._passwords.verify(None if user is None else user.password_hash, password)
        if user is None or not ok:
            raise Unauthorized(_BAD_LOGIN)
        if user.disabled:
            raise Forbidden("this account is disabled")
        rehash = None
        if self._passwords.needs_rehash(user.password_hash):
            rehash = await self._passwords.hash(password)
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
            raise TokenReused(user=session.user, session=session.family)
        if rotation.outcome != "rotated" or session is None:
            raise Unauthorized("invalid refresh token")
        pair, _ = self._issue(session.user, session.device, session.family, refresh)
        return pair

    async def logout(self, principal: Principal) -> None:
        """Revoke the principal's session: its refresh and access tokens stop working."""
        await self._store.revoke_session(principal.user, principal.session, now_ms=self._clock())

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid access token whose session is live and whose
        user is not disabled; ``Unauthorized`` otherwise."""
        claims = self._tokens.decode_access(token)
        if not await self._store.is_session_active(claims.user, claims.session):
            raise Unauthorized("session revoked")
        return Principal(claims.user, claims.device, claims.session, claims.expires_at_ms)

    async def get_user(self, user_id: str) -> User:
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    def _issue(
        self, user: str, device: str, session: str, refresh: str
    ) -> tuple[TokenPair, Principal]:
        access = self._tokens.issue_access(user=user, device=device, session=session)
        pair = TokenPair(access.token, refresh, self._config.access_ttl_s)
        return pair, Principal(user, device, session, access.expires_at_ms)


def _check_password(password: str) -> None:
    # Accepted exactly as typed: no stripping or case folding (ASVS 6.2.1).
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise BadRequest(
            f"password: must be {_MIN_PASSWORD}-{_MAX_PASSWORD} characters", field="password"
        )
