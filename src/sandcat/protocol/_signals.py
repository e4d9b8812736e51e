"""Ephemeral signal frames: typing, presence and call signalling (SPEC.md §4.16-4.20).

Nothing these frames carry is stored (except the call log a call leaves, a
kind 8 message). They follow the rules of every other frame: frozen,
validated on construction, body keys in field order. The checks come from
``_fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from ._fields import (
    Op,
    _check_cid,
    _check_clean,
    _check_id,
    _check_request_rid,
    _check_uint,
    _is_uint,
)
from ._limits import Limits

__all__ = [
    "CALL_ACTIONS",
    "CALL_EVENTS",
    "CALL_OUTCOMES",
    "PRESENCE_STATES",
    "Call",
    "CallEvent",
    "Presence",
    "PresenceSet",
    "Typing",
    "TypingEvent",
]

#: What a user may choose; ``invisible`` appears as ``offline`` to everyone else.
PRESENCE_STATES: Final = ("online", "away", "busy", "invisible")
#: What others see.
_SEEN_STATES: Final = ("online", "away", "busy", "offline")
#: Call requests a client may make, and the fields each needs (SPEC.md §4.19).
CALL_ACTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "invite": ("peer", "media"),
    "accept": ("call",),
    "reject": ("call",),
    "cancel": ("call",),
    "hangup": ("call",),
    "offer": ("call", "sdp"),
    "answer": ("call", "sdp"),
    "candidate": ("call", "candidate"),
}
#: Call events the server pushes.
CALL_EVENTS: Final = ("ring", "accepted", "offer", "answer", "candidate", "ended")
#: How a call ended (the call log's ``outcome``, SPEC.md §9 kind 8).
CALL_OUTCOMES: Final = ("completed", "missed", "declined", "cancelled", "failed")
_MEDIA: Final = ("audio", "video")
#: An SDP of a few dozen codecs and candidates fits easily.
MAX_SDP_CHARS: Final = 16384
#: An ICE candidate line (RFC 8839) is well under this.
_MAX_CANDIDATE_CHARS: Final = 1024
_MAX_MID_CHARS: Final = 64
#: Entries of one PRESENCE push (a snapshot holds one per friend).
MAX_PRESENCE_ENTRIES: Final = 10_000
_REASONS: Final = ("hangup", "rejected", "cancelled", "timeout", "busy", "disconnected")


def _check_choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}: must be one of {', '.join(choices)}")


def _check_sdp(value: object) -> None:
    if not (isinstance(value, str) and 1 <= len(value) <= MAX_SDP_CHARS):
        raise ValueError(f"sdp: must be a str of 1-{MAX_SDP_CHARS} chars")
    _check_clean("sdp", value)


def _check_candidate(value: object) -> None:
    """``{candidate: str, sdp_mid?: str, sdp_m_line_index?: uint}`` (RTCIceCandidateInit)."""
    rule = (
        "candidate: must be a map {candidate: str of 0-1024 chars, "
        "sdp_mid: str of 0-64 chars, sdp_m_line_index: uint < 2**16}"
    )
    if not isinstance(value, Mapping) or set(value) - {"candidate", "sdp_mid", "sdp_m_line_index"}:
        raise ValueError(rule)
    line, mid, index = (value.get(k) for k in ("candidate", "sdp_mid", "sdp_m_line_index"))
    if not (isinstance(line, str) and len(line) <= _MAX_CANDIDATE_CHARS):
        raise ValueError(rule)
    _check_clean("candidate", line)
    if mid is not None and not (isinstance(mid, str) and len(mid) <= _MAX_MID_CHARS):
        raise ValueError(rule)
    if mid is not None:
        _check_clean("candidate", mid)
    if index is not None and not _is_uint(index, 2**16):
        raise ValueError(rule)


def _check_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{field}: must be a bool")


# -- client -> server ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Typing:
    """The user is typing in ``cid`` (``active`` false: stopped)."""

    op: ClassVar[Op] = Op.TYPING
    rid: int
    cid: str
    active: bool = True

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_bool("active", self.active)


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceSet:
    """Subscribes this connection to its friends' presence; ``state`` also chooses
    how the user appears to them (left out: keep the current choice)."""

    op: ClassVar[Op] = Op.PRESENCE_SET
    rid: int
    state: str | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if self.state is not None:
            _check_choice("state", self.state, PRESENCE_STATES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One call-signalling request; ``action`` says which fields it needs."""

    op: ClassVar[Op] = Op.CALL
    rid: int
    action: str
    call: str | None = None
    peer: str | None = None
    media: str | None = None
    sdp: str | None = None
    candidate: Mapping[str, object] | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_choice("action", self.action, tuple(CALL_ACTIONS))
        for field in CALL_ACTIONS[self.action]:
            if getattr(self, field) is None:
                raise ValueError(f"{field}: required for action {self.action}")
        if self.call is not None:
            _check_id("call", self.call)
        if self.peer is not None:
            _check_id("peer", self.peer)
        if self.media is not None:
            _check_choice("media", self.media, _MEDIA)
        if self.sdp is not None:
            _check_sdp(self.sdp)
        if self.candidate is not None:
            _check_candidate(self.candidate)


# -- server -> client ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TypingEvent:
    """``user`` is typing in ``cid`` (or stopped); pushed to the other members."""

    op: ClassVar[Op] = Op.TYPING
    cid: str
    user: str
    active: bool

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_cid(self.cid)
        _check_id("user", self.user)
        _check_bool("active", self.active)


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence:
    """How friends appear now: ``users`` is a list of ``{user, state, last_seen?}``."""

    op: ClassVar[Op] = Op.PRESENCE
    users: tuple[Mapping[str, object], ...]

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        if not (isinstance(self.users, tuple) and len(self.users) <= MAX_PRESENCE_ENTRIES):
            raise ValueError(f"users: must be a list of at most {MAX_PRESENCE_ENTRIES} entries")
        for entry in self.users:
            if not isinstance(entry, Mapping) or set(entry) - {"user", "state", "last_seen"}:
                raise ValueError("users: each entry is a map {user, state, last_seen}")
            _check_id("users.user", entry.get("user"))
            _check_choice("users.state", entry.get("state"), _SEEN_STATES)
            if entry.get("last_seen") is not None:
                _check_uint("users.last_seen", entry.get("last_seen"))


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """Something happened to a call this device takes part in (or rings for)."""

    op: ClassVar[Op] = Op.CALL_EVENT
    call: str
    action: str
    #: ring: the caller, and the media; accepted: the callee's device that answered.
    sender: str | None = None
    media: str | None = None
    device: str | None = None
    sdp: str | None = None
    candidate: Mapping[str, object] | None = None
    #: ended: how, why and how long.
    outcome: str | None = None
    reason: str | None = None
    duration_ms: int | None = None

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_id("call", self.call)
        _check_choice("action", self.action, CALL_EVENTS)
        if self.sender is not None:
            _check_id("from", self.sender)
        if self.media is not None:
            _check_choice("media", self.media, _MEDIA)
        if self.device is not None:
            _check_id("device", self.device)
        if self.sdp is not None:
            _check_sdp(self.sdp)
        if self.candidate is not None:
            _check_candidate(self.candidate)
        if self.outcome is not None:
            _check_choice("outcome", self.outcome, CALL_OUTCOMES)
        if self.reason is not None:
            _check_choice("reason", self.reason, _REASONS)
        if self.duration_ms is not None:
            _check_uint("duration_ms", self.duration_ms, Limits.max_duration_ms)
