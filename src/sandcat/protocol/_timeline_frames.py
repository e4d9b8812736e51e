"""Frames that work on a conversation's timeline: RECALL, EDIT, HISTORY, HIDE.

RECALL and EDIT write recall and edit events (kinds 11 and 12) through the
send path; HISTORY reads in either direction or by mid; HIDE hides messages
from one user (SPEC.md "The timeline"). Same rules as `_frames`: frozen, validated on
construction, field order is wire order. Import these frames from `_frames`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ._fields import (
    Op,
    _check_cid,
    _check_cmid,
    _check_id,
    _check_request_rid,
    _check_uint,
    _is_uint,
)
from ._limits import Limits

__all__ = ["Edit", "Hide", "History", "Recall"]


def _check_limit(value: object) -> None:
    if not _is_uint(value, Limits.max_pull_limit + 1) or value == 0:
        raise ValueError(f"limit: must be an int of 1-{Limits.max_pull_limit}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Recall:
    """Recalls message ``seq`` of ``cid``: a new seq'd event; the target becomes a tombstone."""

    op: ClassVar[Op] = Op.RECALL
    rid: int
    cid: str
    cmid: str
    seq: int

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_cmid(self.cmid)
        _check_uint("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Edit:
    """Replaces the body of message ``seq`` of ``cid``: a new seq'd event."""

    op: ClassVar[Op] = Op.EDIT
    rid: int
    cid: str
    cmid: str
    seq: int
    body: object

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_cmid(self.cmid)
        _check_uint("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """Pages through a conversation in either direction, or looks up one message by mid.

    Either ``cid`` (with at most one of ``before`` and ``after``; neither: the
    latest messages) or ``mid`` alone.
    """

    op: ClassVar[Op] = Op.HISTORY
    rid: int
    cid: str | None = None
    mid: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = Limits.default_pull_limit

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if (self.cid is None) == (self.mid is None):
            raise ValueError("cid: must be given, or else mid (not both)")
        if self.cid is not None:
            _check_cid(self.cid)
        if self.mid is not None:
            _check_id("mid", self.mid)
            if self.before is not None or self.after is not None:
                raise ValueError("mid: must be alone (no before or after)")
        if self.before is not None and self.after is not None:
            raise ValueError("before: must be left out when after is given")
        for field in ("before", "after"):
            value = getattr(self, field)
            if value is not None:
                _check_uint(field, value)
        _check_limit(self.limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hide:
    """Hides messages of ``cid`` from this user only (delete for me)."""

    op: ClassVar[Op] = Op.HIDE
    rid: int
    cid: str
    seqs: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        if not (
            isinstance(self.seqs, tuple)
            and 1 <= len(self.seqs) <= Limits.max_pull_limit
            and all(_is_uint(seq, Limits.max_seq) and seq > 0 for seq in self.seqs)
        ):
            raise ValueError(f"seqs: must be a list of 1-{Limits.max_pull_limit} seqs >= 1")
