"""Ids and conversation ids (SPEC.md "Ids and cids")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from ._limits import Limits

__all__ = ["Cid", "direct_cid", "group_cid", "is_valid_cid", "is_valid_id", "parse_cid"]

_ID: Final = f"[A-Za-z0-9_-]{{1,{Limits.max_id_chars}}}"
_ID_RE: Final = re.compile(_ID)
# Direct cids are ordered "d:<lower>:<higher>"; the order is checked in code.
_CID_RE: Final = re.compile(f"d:({_ID}):({_ID})|g:{_ID}")


def is_valid_id(value: object) -> bool:
    """Whether *value* is an id: a str of 1-64 chars from ``[A-Za-z0-9_-]``."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def is_valid_cid(value: object) -> bool:
    """Whether *value* is a conversation id.

    A cid is ``"g:" + group id`` or ``"d:" + a + ":" + b`` for two user ids
    with ``a < b`` (code point order), the form `direct_cid` builds.
    """
    if not isinstance(value, str):
        return False
    match = _CID_RE.fullmatch(value)
    if match is None:
        return False
    low, high = match.group(1, 2)
    return low is None or low < high


def direct_cid(user_a: str, user_b: str) -> str:
    """The cid of the direct conversation between two distinct users.

    Either side computes the same cid: the ids in code point order.

    Raises:
        ValueError: if an id is invalid or both are the same user.
    """
    if not (is_valid_id(user_a) and is_valid_id(user_b)) or user_a == user_b:
        raise ValueError(f"direct_cid needs two distinct user ids, got {user_a!r}, {user_b!r}")
    low, high = sorted((user_a, user_b))
    return f"d:{low}:{high}"


def group_cid(group_id: str) -> str:
    """The cid of a group's conversation.

    Raises:
        ValueError: if *group_id* is not a valid id.
    """
    if not is_valid_id(group_id):
        raise ValueError(f"group_cid needs a group id, got {group_id!r}")
    return f"g:{group_id}"


@dataclass(frozen=True, slots=True)
class Cid:
    """A conversation id, parsed once (`parse_cid`): its kind and the ids inside it."""

    value: str
    kind: Literal["direct", "group"]
    #: The two user ids of a direct conversation (in order), or the group id alone.
    parts: tuple[str, ...]

    @property
    def group(self) -> str | None:
        """The group id of a group conversation; None for a direct one."""
        return self.parts[0] if self.kind == "group" else None

    def peer_of(self, user: str) -> str | None:
        """The other side of a direct conversation that *user* is part of, else None."""
        if self.kind != "direct" or user not in self.parts:
            return None
        low, high = self.parts
        return high if user == low else low


def parse_cid(value: object) -> Cid:
    """The `Cid` *value* names.

    Raises:
        ValueError: if *value* is not a conversation id (`is_valid_cid`).
    """
    if isinstance(value, str):
        match = _CID_RE.fullmatch(value)
        if match is not None:
            low, high = match.group(1, 2)
            if low is None:
                return Cid(value, "group", (value[2:],))
            if low < high:
                return Cid(value, "direct", (low, high))
    raise ValueError(f"not a conversation id: {value!r}")
