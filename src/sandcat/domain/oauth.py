"""Log in with GitHub (OAuth 2.0 authorisation code flow with PKCE).

``start`` hands out the provider's authorisation URL with a fresh ``state``
and a PKCE challenge; only the state's hash and the verifier are kept, for
``state_ttl_s``, and a state works once (the original never checked it, so any
callback was accepted: RFC 9700 §4.7). ``finish`` checks the state, trades the
code for a provider token, reads the account and its verified primary email,
and logs in the linked user: one linked before, else the user who registered
that verified email, else a new account (its password unusable until reset).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from sandcat.clock import Clock
from sandcat.config import OAuthConfig
from sandcat.domain.accounts import Accounts, Login, check_device
from sandcat.errors import Conflict, NotFound, Unauthorized, Unavailable
from sandcat.ids import new_id
from sandcat.store.accounts import AccountStore, OAuthState, User

PROVIDER = "github"
_NOT_USERNAME = re.compile(r"[^a-z0-9_.]")
#: Tries at a free username for a new account before giving up.
_NAME_TRIES = 5
_FAILED = "github login failed; start again"


@dataclass(frozen=True, slots=True)
class _Profile:
    subject: str
    login: str
    name: str
    avatar: str
    email: str | None


def _printable(text: str) -> str:
    """``text`` without control characters (a provider's data is not ours to trust)."""
    return "".join(char for char in text if char.isprintable()).strip()


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _username(login: str, attempt: int) -> str:
    base = _NOT_USERNAME.sub("_", login.lower())[:26].ljust(3, "_")
    return base if attempt == 0 else f"{base}_{secrets.randbelow(10**5):05d}"


class GithubLogin:
    def __init__(
        self, store: AccountStore, accounts: Accounts, *, config: OAuthConfig, clock: Clock
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._config = config
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self._config.github_client_id)

    def _check_enabled(self) -> None:
        if not self.enabled:
            raise NotFound("github login is not configured here")

    async def start(self, *, device: str | None, platform: str | None) -> str:
        """The URL to send the user to; ``device``/``platform`` are for the session."""
        self._check_enabled()
        check_device(device, platform)
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        await self._store.put_state(
            _hash(state),
            OAuthState(
                provider=PROVIDER,
                verifier=verifier,
                device=device,
                platform=platform,
                expires_at=self._clock() + self._config.state_ttl_s * 1000,
            ),
        )
        query = urlencode(
            {
                "client_id": self._config.github_client_id,
                "redirect_uri": self._config.github_redirect_url,
                "scope": "read:user user:email",
                "state": state,
                "code_challenge": _challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self._config.github_authorize_url}?{query}"

    async def finish(self, *, code: str, state: str, ip: str | None) -> Login:
        """Log in the user GitHub vouches for. ``Unauthorized`` for an unknown,
        used or expired state or a refused code; ``Unavailable`` if GitHub
        cannot be reached; ``Forbidden`` for a disabled account."""
        self._check_enabled()
        pending = await self._store.take_state(_hash(state), now_ms=self._clock())
        if pending is None or pending.provider != PROVIDER:
            raise Unauthorized("invalid or expired oauth state; start again")
        profile = await self._profile(code, pending.verifier)
        user = await self._store.find_identity(PROVIDER, profile.subject)
        if user is None:
            user = await self._link(profile)
        return await self._accounts.open_session(
            user, device=pending.device, platform=pending.platform, ip=ip
        )

    async def _link(self, profile: _Profile) -> User:
        now = self._clock()
        if profile.email is not None:
            known = await self._store.find_login(profile.email)
            if known is not None and known.email == profile.email:
                await self._store.link_identity(
                    PROVIDER, profile.subject, known, create=False, now_ms=now
                )
                return known
        password = await self._accounts.unusable_password()
        for attempt in range(_NAME_TRIES):
            user = User(
                id=new_id(),
                username=_username(profile.login, attempt),
                display_name=_printable(profile.name or profile.login)[:64] or "github user",
                password_hash=password,
                email=profile.email,
                avatar=profile.avatar[:512],
                created_at=now,
                updated_at=now,
            )
            try:
                await self._store.link_identity(
                    PROVIDER, profile.subject, user, create=True, now_ms=now
                )
            except Conflict as exc:
                if exc.field != "username":
                    raise
                continue
            return user
        raise Unavailable("could not find a free username; try again")

    async def _profile(self, code: str, verifier: str) -> _Profile:
        config = self._config
        try:
            async with httpx.AsyncClient(timeout=config.timeout_s) as http:
                token = await http.post(
                    config.github_token_url,
                    data={
                        "client_id": config.github_client_id,
                        "client_secret": config.github_client_secret,
                        "code": code,
                        "redirect_uri": config.github_redirect_url,
                        "code_verifier": verifier,
                    },
                    headers={"Accept": "application/json"},
                )
                access = _json(token).get("access_token")
                if token.status_code != 200 or not isinstance(access, str):
                    raise Unauthorized(_FAILED)
                headers = {
                    "Authorization": f"Bearer {access}",
                    "Accept": "application/vnd.github+json",
                }
                account = await http.get(f"{config.github_api_url}/user", headers=headers)
                emails = await http.get(f"{config.github_api_url}/user/emails", headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable("github cannot be reached; try again") from exc
        data = _json(account)
        subject, login = data.get("id"), data.get("login")
        if account.status_code != 200 or not isinstance(subject, int) or not isinstance(login, str):
            raise Unauthorized(_FAILED)
        primary = None
        for entry in _json_list(emails) if emails.status_code == 200 else []:
            if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
                email = entry.get("email")
                primary = email.strip().lower() if isinstance(email, str) else None
        name, avatar = data.get("name"), data.get("avatar_url")
        return _Profile(
            subject=str(subject),
            login=login,
            name=name if isinstance(name, str) else "",
            avatar=avatar if isinstance(avatar, str) else "",
            email=primary,
        )


def _json_list(reply: httpx.Response) -> list[Any]:
    try:
        data = reply.json()
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _json(reply: httpx.Response) -> dict[str, Any]:
    try:
        data = reply.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
