"""The accounts aggregate: users, their login sessions and verification codes.

A session is one login on one device. Its id is the *refresh-token family*:
every refresh rotates the refresh token (a new row in the same family, the
old row revoked), while the session id that access tokens carry stays the
same, so the gateway can close a session's sockets by that id. Only the
SHA-256 of a refresh token is ever stored, and only a keyed hash of an email
verification code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: str
    username: str
    display_name: str
    password_hash: str
    email: str | None = None
    phone: str | None = None
    avatar: str = ""
    gender: str = ""
    #: ``YYYY-MM-DD`` or None.
    birthday: str | None = None
    signature: str = ""
    region: str = ""
    language: str = ""
    #: Whether others may find this user by exact email / phone in search.
    find_by_email: bool = True
    find_by_phone: bool = True
    #: Whether this user's direct peers learn what they read, and they theirs.
    read_receipts: bool = True
    created_at: int
    updated_at: int
    disabled: bool = False
    last_login_at: int | None = None
    last_login_ip: str | None = None
    last_login_device: str | None = None


#: The profile fields ``update_profile`` may change.
PROFILE_FIELDS = frozenset(
    {
        "display_name",
        "avatar",
        "gender",
        "birthday",
        "signature",
        "region",
        "language",
        "phone",
        "find_by_email",
        "find_by_phone",
        "read_receipts",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One refresh token of a session (a family of rotated refresh tokens)."""

    id: str
    family: str
    user: str
    device: str
    platform: str
    refresh_hash: str
    created_at: int
    expires_at: int
    ip: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """A live session as its user sees it in the device list."""

    id: str
    device: str
    platform: str
    #: When the session began (the login), and when it last refreshed.
    created_at: int
    last_used_at: int
    expires_at: int
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class Rotation:
    """What presenting a refresh token did.

    ``rotated``: ``session`` is the new token's row. ``reused``: the token was
    already rotated or revoked; its whole family is now revoked and ``session``
    is the presented row. ``invalid``: unknown, expired, or the user is disabled.
    """

    outcome: Literal["rotated", "reused", "invalid"]
    session: Session | None = None


Match = Literal["username", "email", "phone", "prefix"]


@dataclass(frozen=True, slots=True)
class Found:
    user: User
    match: Match


class UserStore(Protocol):
    async def create_user(self, user: User) -> None:
        """Insert ``user``; ``Conflict`` (field ``username``, ``email`` or ``phone``)
        on a duplicate."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_login(self, login: str) -> User | None:
        """The user whose username (any case), email or phone is ``login``."""

    async def update_profile(
        self, user_id: str, changes: Mapping[str, object], *, now_ms: int
    ) -> User:
        """Apply ``changes`` (keys of ``PROFILE_FIELDS``, values already valid);
        ``Conflict`` (field ``phone``) if the phone is someone else's."""


class UserDirectory(Protocol):
    async def visible_user(self, viewer: str, user_id: str) -> User | None:
        """``user_id`` unless disabled or blocking ``viewer``."""

    async def search(self, viewer: str, query: str, *, limit: int, offset: int) -> list[Found]:
        """Users matching ``query`` exactly (username, and email or phone where the
        user allows it), then by username or display-name prefix; never ``viewer``,
        disabled users or users blocking ``viewer``."""


class SessionStore(Protocol):
    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        """Insert a session and record the login on its user (time, ip, device,
        an upgraded hash)."""

    async def rotate_session(
        self,
        refresh_hash: str,
        *,
        new_id: str,
        new_hash: str,
        now_ms: int,
        expires_at_ms: int,
        ip: str | None,
    ) -> Rotation:
        """Atomically replace the token ``refresh_hash`` by ``new_hash`` in the same family.

        The new row copies user, device and platform from the presented one.
        """

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> bool:
        """End one session of ``user``; False if it was not live."""

    async def is_session_active(self, user: str, family: str) -> bool:
        """True if the family has an unrevoked token and the user is not disabled."""

    async def list_sessions(self, user: str, *, now_ms: int) -> list[SessionInfo]:
        """The live sessions of ``user``, most recently used first."""


class CredentialStore(Protocol):
    async def set_password(
        self, user: str, password_hash: str, *, keep: str | None, now_ms: int
    ) -> list[str]:
        """Replace the hash and end every session but ``keep``; the ended ones."""

    async def revoke_all(self, user: str, *, now_ms: int) -> list[str]:
        """End every session of ``user``; the ended ones."""

    async def disable(self, user: str, *, now_ms: int) -> list[str]:
        """Disable the account and end every session; the ended ones."""


class CodeStore(Protocol):
    async def put_code(
        self, email: str, purpose: str, code_hash: str, *, expires_at_ms: int, now_ms: int
    ) -> None:
        """Store the live code for (email, purpose), replacing an earlier one."""

    async def take_code(
        self, email: str, purpose: str, code_hash: str, *, now_ms: int, max_attempts: int
    ) -> bool:
        """True, and the code is gone, if ``code_hash`` is the live unexpired code.
        A wrong guess counts an attempt; after ``max_attempts`` the code is gone."""

    async def expire_codes(self, *, now_ms: int) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthState:
    """A pending OAuth authorisation, kept until its callback (single use)."""

    provider: str
    verifier: str
    device: str | None
    platform: str | None
    expires_at: int


class IdentityStore(Protocol):
    async def put_state(self, state_hash: str, state: OAuthState) -> None: ...

    async def take_state(self, state_hash: str, *, now_ms: int) -> OAuthState | None:
        """The unexpired state, which is gone afterwards; None if unknown or expired."""

    async def find_identity(self, provider: str, subject: str) -> User | None:
        """The user linked to this provider account."""

    async def link_identity(
        self, provider: str, subject: str, user: User, *, create: bool, now_ms: int
    ) -> None:
        """Link the provider account to ``user``, inserting ``user`` first if ``create``;
        ``Conflict`` (field ``username``) if a new user's name is taken."""


class AccountStore(
    UserStore, UserDirectory, SessionStore, CredentialStore, CodeStore, IdentityStore, Protocol
):
    """Everything the accounts use cases need."""
