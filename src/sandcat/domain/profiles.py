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
from sandcat.domain._text import bounded, display_text
from sandcat.domain.accounts import normalize_phone
from sandcat.domain.avatars import avatar_ref
from sandcat.errors import BadRequest, NotFound
from sandcat.ids import parse_id
from sandcat.store.accounts import PROFILE_FIELDS, AccountStore, Found, User

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
    def __init__(self, store: AccountStore, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock

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

    async def update(self, user: str, changes: Mapping[str, object]) -> User:
        """Change some of ``user``'s own profile fields; ``BadRequest`` naming a bad
        or unknown field, ``Conflict`` (field ``phone``) for a taken phone."""
        today = datetime.datetime.fromtimestamp(self._clock() / 1000, datetime.UTC).date()
        cleaned: dict[str, object] = {}
        for field, value in changes.items():
            if field not in PROFILE_FIELDS:
                raise BadRequest(f"{field}: not a profile field", field=field)
            cleaned[field] = _clean(field, value, today)
        if not cleaned:
            return await self.me(user)
        return await self._store.update_profile(user, cleaned, now_ms=self._clock())

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
