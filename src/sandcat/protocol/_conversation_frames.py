"""Frames of a member's own conversation settings and of group read receipts.

CONV_SET changes pin, mute, hide or "clear history for me"; CONV_STATE tells
the member's other devices; READERS asks who in a group has read up to a seq
(SPEC.md "CONV_SET", "CONV_STATE", "READERS"). Same rules as `_frames`:
frozen, validated on construction, field order is wire order. Import these
frames from `_frames`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from ._fields import Op, _check_cid, _check_id, _check_request_rid, _check_uint, _is_uint

__all__ = ["MAX_READERS_LIMIT", "ConvSet", "ConvState", "Readers"]

#: Members per READERS page: a 500-member group answers in one page, and a
#: page of 64-char ids stays well under a frame's 64 KiB.
MAX_READERS_LIMIT: Final = 500


def _check_flag(field: str, value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{field}: must be true or false")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConvSet:
    """Changes the sender's own settings of one conversation; absent ones stay."""

    op: ClassVar[Op] = Op.CONV_SET
    rid: int
    cid: str
    pinned: bool | None = None
    muted: bool | None = None
    hidden: bool | None = None
    #: True: hide every message up to the current max seq from this user.
    clear: bool | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        for field in ("pinned", "muted", "hidden", "clear"):
            _check_flag(field, getattr(self, field))
        if self.pinned is None and self.muted is None and self.hidden is None and not self.clear:
            raise ValueError("body: must set pinned, muted or hidden, or clear: true")


@dataclass(frozen=True, slots=True, kw_only=True)
class Readers:
    """Which members of a group have read up to ``seq``, a page at a time."""

    op: ClassVar[Op] = Op.READERS
    rid: int
    cid: str
    seq: int
    #: Start after this user id (the ``next`` of the previous page).
    after: str | None = None
    limit: int = MAX_READERS_LIMIT

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_uint("seq", self.seq)
        if self.after is not None:
            _check_id("after", self.after)
        if not _is_uint(self.limit, MAX_READERS_LIMIT + 1) or self.limit == 0:
            raise ValueError(f"limit: must be an int of 1-{MAX_READERS_LIMIT}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConvState:
    """A member's settings of a conversation changed (pushed to their other devices)."""

    op: ClassVar[Op] = Op.CONV_STATE
    cid: str
    pinned: bool
    muted: bool
    hidden: bool
    cleared_seq: int

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_cid(self.cid)
        for field in ("pinned", "muted", "hidden"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field}: must be true or false")
        _check_uint("cleared_seq", self.cleared_seq)
