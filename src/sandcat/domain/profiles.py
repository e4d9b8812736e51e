"""Profiles: reading and editing users, and finding them.

Only a user edits their own profile (the API offers no other target). Others
see a public view, and see nothing at all of a disabled user or of a user who
blocks them: the same 404 as for an id that does not exist.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Mapping

from sandcat.clock import Clock
from sandcat.config import AuthConfig
from sandcat.domain._text import bounded, display_text
from sandcat.domain.accounts import normalize_phone
from sandcat.domain.avatars import avatar_ref
from sandcat.domain.codes import VerificationCodes, normalize_email
from sandcat.errors import BadRequest, NotFound, RateLimited
from sandcat.ids import parse_id
from sandcat.store.accounts import PROFILE_FIELDS, AccountStore, Found, User
from sandcat.store.ratelimit import Limiters, LocalLimiters

GENDERS = ("", "female", "male", "other")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
MAX_SEARCH_LIMIT = 50
MAX_SEARCH_OFFSET = 1000
_TEXT_LIMITS = {
    "display_name": (1, 64),
    "avatar": (0, 512),
    "signature": (0, 256),
    "region": (0, 64),
}


#: Fields that need a code sent to their new value before they change.
_CONTACTS = ("email", "phone")


def _contact(kind: str, changes: dict[str, object]) -> tuple[str, str | None] | None:
    """Take a new ``kind`` (and its ``kind_code``) out of ``changes``, normalised;
    None if none is asked for (``phone: null`` stays in ``changes``: removing
    a number needs no code)."""
    code_field = f"{kind}_code"
    code = changes.pop(code_field, None)
    if code is not None and not isinstance(code, str):
        raise BadRequest(f"{code_field}: must be a string", field=code_field)
    value = changes.get(kind)
    if value is None:
        if code is not None:
            raise BadRequest(f"{code_field}: goes with a new {kind}", field=code_field)
        if kind == "email" and kind in changes:
            raise BadRequest("email: cannot be removed", field="email")
        return None
    del changes[kind]
    if not isinstance(value, str):
        raise BadRequest(f"{kind}: must be a string", field=kind)
    address = normalize_phone(value) if kind == "phone" else normalize_email(value)
    return address, code


def _birthday(value: object, today: datetime.date) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            day = datetime.date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None and len(value) == 10 and datetime.date(1900, 1, 1) <= day <= today:
            return value
    raise BadRequest("birthday: must be a date YYYY-MM-DD, not in the future", field="birthday")


def _clean(field: str, value: object, today: datetime.date) -> object:
    """The stored form of one profile field, or ``BadRequest`` naming it."""
    if field in ("find_by_email", "find_by_phone", "read_receipts"):
        if not isinstance(value, bool):
            raise BadRequest(f"{field}: must be true or false", field=field)
        return int(value)
    if field == "birthday":
        return _birthday(value, today)
    if field == "phone":
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadRequest("phone: must be a string or null", field=field)
        return normalize_phone(value)
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string", field=field)
    if field == "gender":
        if value not in GENDERS:
            raise BadRequest("gender: must be one of '', female, male, other", field=field)
        return value
    if field == "language":
        if value and not _LANGUAGE.fullmatch(value):
            raise BadRequest("language: must be a language tag like en or pt-BR", field=field)
        return value
    low, high = _TEXT_LIMITS[field]
    if field == "display_name":
        return display_text(value, field=field, low=low, high=high)
    if field == "avatar":
        return avatar_ref(bounded(value, field=field, low=low, high=high))
    return bounded(value, field=field, low=low, high=high)


class Profiles:
    def __init__(
        self,
        store: AccountStore,
        *,
        clock: Clock,
        codes: VerificationCodes | None = None,
        config: AuthConfig | None = None,
        limiters: Limiters | None = None,
    ) -> None:
        config = config or AuthConfig()
        self._store = store
        self._clock = clock
        self._codes = codes
        self._changes = (limiters or LocalLimiters(clock)).limiter(
            "profile-changes",
            limit=config.profile_changes_per_user,
            window_s=config.profile_window_s,
        )

    async def me(self, user: str) -> User:
        found = await self._store.get_user(user)
        if found is None:  # pragma: no cover - an authenticated user exists
            raise NotFound("no such user")
        return found

    async def public(self, viewer: str, user_id: str) -> User:
        """``user_id``'s profile as ``viewer`` may see it; ``NotFound`` if hidden."""
        user_id = parse_id(user_id, field="id")
        found = await self._store.visible_user(viewer, user_id)
        if found is None:
            raise NotFound("no such user")
        return found

    async def update(
        self, user: str, changes: Mapping[str, object], *, ip: str | None = None
    ) -> tuple[User, tuple[str, ...]]:
        """Change some of ``user``'s own profile fields; the user after, and which
        of ``email`` / ``phone`` wait for a code.

        A new ``email`` or ``phone`` is not applied: a code is sent to it
        (``VerificationCodes.send_contact_code``), and the same change with
        ``email_code`` / ``phone_code`` applies it. ``phone: null`` removes the
        number at once. Raises ``BadRequest`` naming a bad or unknown field or a
        wrong code, ``Conflict`` (field ``email`` or ``phone``) for a taken one,
        only once its code was given, and ``RateLimited`` past
        ``profile_changes_per_user`` changes or the code limits."""
        wait = await self._changes.take(user)
        if wait:
            raise RateLimited("too many profile changes; wait", retry_after_ms=wait)
        today = datetime.datetime.fromtimestamp(self._clock() / 1000, datetime.UTC).date()
        rest = dict(changes)
        contacts = {kind: _contact(kind, rest) for kind in _CONTACTS}
        cleaned: dict[str, object] = {}
        for field, value in rest.items():
            if field not in PROFILE_FIELDS:
                raise BadRequest(f"{field}: not a profile field", field=field)
            cleaned[field] = _clean(field, value, today)
        pending = []
        for kind, wanted in contacts.items():
            if wanted is None:
                continue
            address, code = wanted
            if code is not None:
                if self._codes is None:  # pragma: no cover - app.py always wires codes
                    raise BadRequest(f"{kind}_code: verification is not available")
                await self._codes.redeem_contact(user, address, code, field=f"{kind}_code")
                cleaned[kind] = address
            elif getattr(await self.me(user), kind) != address:
                if self._codes is None:  # pragma: no cover - app.py always wires codes
                    raise BadRequest(f"{kind}: verification is not available", field=kind)
                await self._codes.send_contact_code(user, ip=ip, **{kind: address})
                pending.append(kind)
        if not cleaned:
            return await self.me(user), tuple(pending)
        updated = await self._store.update_profile(user, cleaned, now_ms=self._clock())
        return updated, tuple(pending)

    async def search(
        self, viewer: str, query: str, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[Found], bool]:
        """A page of users matching ``query`` (see ``UserDirectory.search``), and
        whether more follow."""
        query = bounded(query, field="q", low=1, high=254)
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise BadRequest(f"limit: must be 1-{MAX_SEARCH_LIMIT}", field="limit")
        if not 0 <= offset <= MAX_SEARCH_OFFSET:
            raise BadRequest(f"offset: must be 0-{MAX_SEARCH_OFFSET}", field="offset")
        if query[:1] == "+":
            # Not a phone number after all: search it as a name.
            with contextlib.suppress(BadRequest):
                query = normalize_phone(query)
        found = await self._store.search(viewer, query, limit=limit + 1, offset=offset)
        return found[:limit], len(found) > limit
