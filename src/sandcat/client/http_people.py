"""Accounts, sessions, profiles, the inbox and calls over HTTP (contacts: ``http_contacts``).

The typed results are built from the API's JSON objects (the OpenAPI
document's schemas of the same names); fields the server may leave out are
optional here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .http_transport import API_PREFIX, JSON, HttpTransport, _fields
from .replies import InboxPage

__all__ = [
    "Login",
    "PeopleRoutes",
    "SessionInfo",
    "Tokens",
    "TurnCredentials",
    "User",
    "UserPage",
]


def _opt_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    return None if value is None else int(value)


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tokens:
    """An access/refresh token pair; ``expires_at`` is the access token's
    expiry in ``time.time()`` seconds."""

    access_token: str
    refresh_token: str
    expires_at: float

    @classmethod
    def from_json(cls, body: JSON) -> Tokens:
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=time.time() + float(body["expires_in"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A user. The private fields (``email`` ... ``last_login_device``) are set
    only in your own user (`PeopleRoutes.me`); ``match`` only in search results."""

    id: str
    username: str
    display_name: str
    avatar: str
    created_at: int
    gender: str = ""
    signature: str = ""
    region: str = ""
    language: str = ""
    email: str | None = None
    phone: str | None = None
    birthday: str | None = None
    find_by_email: bool | None = None
    find_by_phone: bool | None = None
    read_receipts: bool | None = None
    last_login_at: int | None = None
    last_login_ip: str | None = None
    last_login_device: str | None = None
    match: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> User:
        flags = {
            key: None if body.get(key) is None else bool(body[key])
            for key in ("find_by_email", "find_by_phone", "read_receipts")
        }
        return cls(
            id=str(body["id"]),
            username=str(body["username"]),
            display_name=str(body["display_name"]),
            avatar=str(body["avatar"]),
            created_at=int(body["created_at"]),
            gender=str(body.get("gender", "")),
            signature=str(body.get("signature", "")),
            region=str(body.get("region", "")),
            language=str(body.get("language", "")),
            email=_opt_str(body, "email"),
            phone=_opt_str(body, "phone"),
            birthday=_opt_str(body, "birthday"),
            last_login_at=_opt_int(body, "last_login_at"),
            last_login_ip=_opt_str(body, "last_login_ip"),
            last_login_device=_opt_str(body, "last_login_device"),
            match=_opt_str(body, "match"),
            **flags,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """A successful login: tokens, the user, and where to connect."""

    tokens: Tokens
    user: User
    ws_url: str
    device: str
    session: str

    @property
    def user_id(self) -> str:
        return self.user.id

    @classmethod
    def from_json(cls, body: JSON) -> Login:
        return cls(
            tokens=Tokens.from_json(body),
            user=User.from_json(body["user"]),
            ws_url=str(body["ws_url"]),
            device=str(body["device"]),
            session=str(body["session"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPage:
    """Search results; ``next_offset`` is the offset of the next page, None on the last."""

    users: Sequence[User]
    next_offset: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """One of your logged-in devices (``current``: the session of the token used)."""

    id: str
    device: str
    platform: str
    created_at: int
    last_used_at: int
    expires_at: int
    ip: str | None
    current: bool

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SessionInfo:
        return cls(
            id=str(body["id"]),
            device=str(body["device"]),
            platform=str(body["platform"]),
            created_at=int(body["created_at"]),
            last_used_at=int(body["last_used_at"]),
            expires_at=int(body["expires_at"]),
            ip=_opt_str(body, "ip"),
            current=bool(body["current"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCredentials:
    """TURN credentials in the coturn REST format (SPEC.md §13): an ``RTCIceServer``."""

    username: str
    credential: str
    ttl: int
    uris: Sequence[str]


class PeopleRoutes(HttpTransport):
    """The accounts, sessions, users, inbox and calls routes."""

    # -- accounts ------------------------------------------------------------------------

    async def register(
        self,
        username: str,
        password: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        code: str | None = None,
    ) -> User:
        """Create an account (``code``: from `request_code`, when email verification is on)."""
        body = _fields(
            username=username,
            password=password,
            display_name=display_name,
            email=email,
            phone=phone,
            code=code,
        )
        return User.from_json((await self._request("POST", "/auth/register", json=body))["user"])

    async def request_code(self, email: str, purpose: str) -> None:
        """Email a 6-digit code for ``purpose`` ``register`` or ``reset``."""
        body = {"email": email, "purpose": purpose}
        await self._request("POST", "/auth/codes", json=body)

    async def login(
        self, login: str, password: str, *, device: str | None = None, platform: str | None = None
    ) -> Login:
        """Log in by username, email or phone."""
        body = _fields(login=login, password=password, device=device, platform=platform)
        return Login.from_json(await self._request("POST", "/auth/login", json=body))

    async def refresh(self, refresh_token: str) -> Tokens:
        """Trade a refresh token for a new pair (the old refresh token stops working)."""
        reply = await self._request("POST", "/auth/refresh", json={"refresh_token": refresh_token})
        return Tokens.from_json(reply)

    async def logout(self, token: str) -> None:
        """End the session of ``token``; its sockets are closed with 4007."""
        await self._request("POST", "/auth/logout", token=token)

    async def logout_everywhere(self, token: str) -> None:
        """End every session of the user, this one too."""
        await self._request("POST", "/auth/logout_all", token=token)

    async def reset_password(self, email: str, code: str, new_password: str) -> None:
        """Set a new password with an emailed ``reset`` code; ends every session."""
        body = {"email": email, "code": code, "new_password": new_password}
        await self._request("POST", "/auth/password/reset", json=body)

    async def github_login_url(
        self, *, device: str | None = None, platform: str | None = None
    ) -> str:
        """Where to send a browser to log in with GitHub (the ``Location`` of the 302)."""
        response = await self._send(
            "GET", "/api/v1/auth/oauth/github", query={"device": device, "platform": platform}
        )
        return str(response.headers["Location"])

    async def github_callback(self, code: str, state: str) -> Login:
        """Finish a GitHub login with the ``code`` and ``state`` GitHub sent back."""
        query = {"code": code, "state": state}
        return Login.from_json(
            await self._request("GET", "/auth/oauth/github/callback", query=query)
        )

    # -- sessions and profiles ------------------------------------------------------------

    async def sessions(self, token: str) -> list[SessionInfo]:
        """Your logged-in devices."""
        reply = await self._request("GET", "/sessions", token=token)
        return [SessionInfo.from_json(s) for s in reply["sessions"]]

    async def revoke_session(self, token: str, session_id: str) -> None:
        """End one of your sessions; its sockets are closed with 4007."""
        await self._request("DELETE", f"/sessions/{session_id}", token=token)

    async def me(self, token: str) -> User:
        """Your own user, with its private fields."""
        return User.from_json((await self._request("GET", "/users/me", token=token))["user"])

    async def update_me(self, token: str, **profile: object) -> User:
        """Change the profile fields given (``display_name``, ``avatar``, ``read_receipts``,
        ...; ``birthday=None`` clears it). A new ``email`` or ``phone`` gets a code sent
        to it and is not changed yet; the same call with ``email_code`` /
        ``phone_code`` then adds it."""
        reply = await self._request("PATCH", "/users/me", json=dict(profile), token=token)
        return User.from_json(reply["user"])

    async def change_password(self, token: str, current: str, new: str) -> None:
        """Change your password; every other session ends."""
        body = {"current_password": current, "new_password": new}
        await self._request("POST", "/users/me/password", json=body, token=token)

    async def disable_me(self, token: str, password: str) -> None:
        """Disable your account; every session ends and your profile is hidden."""
        await self._request("POST", "/users/me/disable", json={"password": password}, token=token)

    async def export(self, token: str, path: str | os.PathLike[str]) -> int:
        """Save your data export (a zip: profile, contacts, groups, conversations with
        their messages, inbox, settings and your files; docs/export.md) to ``path``,
        streamed; the bytes written. One per ``http.export_interval_s`` (`HttpError`
        ``rate_limited`` with ``retry_after_ms`` before that)."""
        return await self._save(f"{API_PREFIX}/users/me/export", path, token=token)

    async def user(self, token: str, user_id: str) -> User:
        """A public profile (404 if disabled, unknown or blocking you)."""
        return User.from_json(
            (await self._request("GET", f"/users/{user_id}", token=token))["user"]
        )

    async def search_users(
        self, token: str, q: str, *, limit: int | None = None, offset: int | None = None
    ) -> UserPage:
        """Exact username, email or phone, then username/display-name prefix (limit ≤ 50)."""
        query = {"q": q, "limit": limit, "offset": offset}
        reply = await self._request("GET", "/users/search", token=token, query=query)
        return UserPage(
            users=tuple(User.from_json(u) for u in reply["users"]),
            next_offset=_opt_int(reply, "next_offset"),
        )

    # -- inbox and calls -----------------------------------------------------------------

    async def inbox(
        self, token: str, *, after: int | None = None, limit: int | None = None
    ) -> InboxPage:
        """Notices after nseq ``after`` (default: after this device's ack), as INBOX_PULL."""
        query = {"after": after, "limit": limit}
        return InboxPage.from_body(await self._request("GET", "/inbox", token=token, query=query))

    async def inbox_ack(self, token: str, upto: int) -> int:
        """This device handled every notice up to ``upto``; returns the nseq now acked."""
        reply = await self._request("POST", "/inbox/ack", json={"upto": upto}, token=token)
        return int(reply["acked"])

    async def turn_credentials(self, token: str) -> TurnCredentials:
        """Time-limited TURN credentials (404 when the server has no TURN secret)."""
        reply = await self._request("GET", "/calls/turn", token=token)
        return TurnCredentials(
            username=str(reply["username"]),
            credential=str(reply["credential"]),
            ttl=int(reply["ttl"]),
            uris=tuple(str(u) for u in reply["uris"]),
        )
