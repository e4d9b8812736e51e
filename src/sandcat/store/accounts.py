"""The accounts aggregate: users and their login sessions.

A session is one login on one device. Its id is the *refresh-token family*:
every refresh rotates the refresh token (a new row in the same family, the
old row revoked), while the session id that access tokens carry stays the
same, so the gateway can close a session's sockets by that id. Only the
SHA-256 of a refresh token is ever stored.
"""

from __future__ import annotations

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
    created_at: int
    updated_at: int
    disabled: bool = False
    last_login_at: int | None = None
    last_login_ip: str | None = None


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


@dataclass(frozen=True, slots=True)
class Rotation:
    """What presenting a refresh token did.

    ``rotated``: ``session`` is the new token's row. ``reused``: the token was
    already rotated or revoked; its whole family is now revoked and ``session``
    is the presented row. ``invalid``: unknown, expired, or the user is disabled.
    """

    outcome: Literal["rotated", "reused", "invalid"]
    session: Session | None = None


class UserStore(Protocol):
    async def create_user(self, user: User) -> None:
        """Insert ``user``; raises ``Conflict`` (field ``username`` or ``email``) on a duplicate."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_login(self, login: str) -> User | None:
        """The user whose username, email or phone is ``login`` (in that order)."""


class SessionStore(Protocol):
    async def start_session(self, session: Session, *, rehash: str | None = None) -> None:
        """Insert a session and record the login on its user (time, ip, an upgraded hash)."""

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

    async def revoke_session(self, user: str, family: str, *, now_ms: int) -> None: ...

    async def is_session_active(self, user: str, family: str) -> bool:
        """True if the family has an unrevoked token and the user is not disabled."""


class AccountStore(UserStore, SessionStore, Protocol):
    """Everything the accounts use cases need."""
