"""Identifiers: opaque ids, conversation ids, and their parsing at the edge.

protocol/SPEC.md §3: ids are 1-64 characters of ``[A-Za-z0-9_-]``, so ``:`` can
separate them inside cids. Direct cids are ``d:min(a,b):max(a,b)``; group cids
are ``g:<group id>``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sandcat.errors import BadRequest

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: 16 random url-safe characters = 96 bits: collision-free in practice.
_NEW_ID_BYTES = 12


def new_id() -> str:
    """A fresh random opaque id."""
    return secrets.token_urlsafe(_NEW_ID_BYTES)


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def parse_id(value: object, *, field: str) -> str:
    if not is_id(value):
        raise BadRequest(f"{field}: must be 1-64 characters of [A-Za-z0-9_-]", field=field)
    assert isinstance(value, str)
    return value


def direct_cid(a: str, b: str) -> str:
    low, high = sorted((a, b))
    return f"d:{low}:{high}"


def group_cid(group_id: str) -> str:
    return f"g:{group_id}"


@dataclass(frozen=True, slots=True)
class Cid:
    """A parsed conversation id."""

    value: str
    kind: Literal["direct", "group"]
    #: The two user ids of a direct conversation, or the group id alone.
    parts: tuple[str, ...]

    def peer_of(self, user: str) -> str | None:
        """The other side of a direct conversation that ``user`` is part of."""
        if self.kind != "direct" or user not in self.parts:
            return None
        a, b = self.parts
        return b if user == a else a


def parse_cid(value: object, *, field: str = "cid") -> Cid:
    if isinstance(value, str):
        pieces = value.split(":")
        if pieces[0] == "d" and len(pieces) == 3 and all(map(is_id, pieces[1:])):
            a, b = pieces[1], pieces[2]
            if a < b:
                return Cid(value, "direct", (a, b))
        elif pieces[0] == "g" and len(pieces) == 2 and is_id(pieces[1]):
            return Cid(value, "group", (pieces[1],))
    raise BadRequest(f"{field}: not a conversation id", field=field)
