"""Frames: one frozen dataclass per frame type, validated on construction.

A frame object is always valid: ``__post_init__`` checks every field against
the wire contract (SPEC.md "Frames") and raises `ValueError` with a message
that starts with the field name (``"cid: must be ..."``). The codec turns that
into ERR ``bad_request`` for a peer's frame; for a frame built locally it is a
programming error. Which content a SEND body may hold is not checked here; see
`validate_content`.

Field order is wire order: `encode` writes body keys in declaration order and
omits optional fields that are None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from ._conversation_frames import MAX_READERS_LIMIT, ConvSet, ConvState, Readers
from ._errors import ErrorCode
from ._fields import (
    MENTION_ALL,
    Op,
    _check_cid,
    _check_cmid,
    _check_id,
    _check_label,
    _check_mentions,
    _check_ref,
    _check_request_rid,
    _check_str,
    _check_uint,
    _is_uint,
)
from ._limits import Limits
from ._signals import Call, CallEvent, Presence, PresenceSet, Typing, TypingEvent
from ._timeline_frames import Edit, Hide, History, Recall

__all__ = [
    "MAX_READERS_LIMIT",
    "MENTION_ALL",
    "Auth",
    "ClientFrame",
    "ConvSet",
    "ConvState",
    "Edit",
    "Err",
    "GoAway",
    "Hello",
    "Hide",
    "History",
    "InboxAck",
    "InboxPull",
    "Msg",
    "Notify",
    "Ok",
    "Op",
    "Ping",
    "Pull",
    "Read",
    "ReadState",
    "Readers",
    "Recall",
    "Send",
    "ServerFrame",
    "Sync",
]


_NOTICE_TYPE = re.compile(r"[a-z0-9_.]+")


# -- client -> server ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """Opens the session; must be the first frame (SPEC.md "HELLO").

    ``token`` may be None when the WebSocket upgrade carried
    ``Authorization: Bearer``.
    """

    op: ClassVar[Op] = Op.HELLO
    rid: int
    token: str | None
    device: str
    platform: str
    client: str | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if self.token is not None:
            _check_str("token", self.token, min_chars=1, max_chars=Limits.max_token_chars)
        _check_id("device", self.device)
        _check_label("platform", self.platform)
        if self.client is not None:
            _check_label("client", self.client)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Asks for the server time; also keeps NAT bindings alive."""

    op: ClassVar[Op] = Op.PING
    rid: int

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """Presents a fresh access token for the session's user."""

    op: ClassVar[Op] = Op.AUTH
    rid: int
    token: str

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_str("token", self.token, min_chars=1, max_chars=Limits.max_token_chars)


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Sends a message; ``cmid`` makes a resend idempotent."""

    op: ClassVar[Op] = Op.SEND
    rid: int
    cid: str
    cmid: str
    kind: int
    body: object
    reply_to: int | None = None
    mentions: tuple[str, ...] | None = None
    #: ``{cid, seq}`` of the message this one forwards (kind and body equal to it).
    forward: Mapping[str, object] | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_cmid(self.cmid)
        _check_uint("kind", self.kind, Limits.max_kind)
        if self.reply_to is not None:
            _check_uint("reply_to", self.reply_to)
        _check_mentions(self.mentions)
        if self.forward is not None:
            _check_ref("forward", self.forward, ("cid", "seq"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pull:
    """Fetches messages of one conversation with ``seq > after``, ascending."""

    op: ClassVar[Op] = Op.PULL
    rid: int
    cid: str
    after: int
    limit: int = Limits.default_pull_limit

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_uint("after", self.after)
        if not _is_uint(self.limit, Limits.max_pull_limit + 1) or self.limit == 0:
            raise ValueError(f"limit: must be an int of 1-{Limits.max_pull_limit}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync:
    """Fetches the conversation list, or its changes since a ``version``."""

    op: ClassVar[Op] = Op.SYNC
    rid: int
    since: int | None = None
    #: Page the answer: about this many of the oldest changes (SPEC.md "SYNC").
    limit: int | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if self.since is not None:
            _check_uint("since", self.since)
        if self.limit is not None and (
            not _is_uint(self.limit, Limits.max_sync_limit + 1) or self.limit == 0
        ):
            raise ValueError(f"limit: must be an int of 1-{Limits.max_sync_limit}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Read:
    """Marks a conversation read up to and including ``seq``."""

    op: ClassVar[Op] = Op.READ
    rid: int
    cid: str
    seq: int

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_cid(self.cid)
        _check_uint("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxPull:
    """Fetches notices of the user's inbox with ``nseq > after``, ascending.

    Without ``after`` the server starts after what this device has acked.
    """

    op: ClassVar[Op] = Op.INBOX_PULL
    rid: int
    after: int | None = None
    limit: int = Limits.default_pull_limit

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if self.after is not None:
            _check_uint("after", self.after)
        if not _is_uint(self.limit, Limits.max_pull_limit + 1) or self.limit == 0:
            raise ValueError(f"limit: must be an int of 1-{Limits.max_pull_limit}")


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxAck:
    """This device has handled every notice up to and including ``upto``."""

    op: ClassVar[Op] = Op.INBOX_ACK
    rid: int
    upto: int

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        _check_uint("upto", self.upto)


# -- server -> client ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ok:
    """The successful reply to the request with the same rid."""

    op: ClassVar[Op] = Op.OK
    rid: int
    body: Mapping[str, object]

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if not (isinstance(self.body, Mapping) and all(isinstance(k, str) for k in self.body)):
            raise ValueError("body: must be a map with str keys")


@dataclass(frozen=True, slots=True, kw_only=True)
class Err:
    """The failed reply to the request with the same rid."""

    op: ClassVar[Op] = Op.ERR
    rid: int
    code: ErrorCode
    message: str
    retry_after_ms: int | None = None

    def __post_init__(self) -> None:
        _check_request_rid(self.rid)
        if not isinstance(self.code, ErrorCode):
            raise ValueError("code: must be one of the error codes")
        _check_str("message", self.message, min_chars=0, max_chars=Limits.max_message_chars)
        if self.retry_after_ms is not None:
            _check_uint("retry_after_ms", self.retry_after_ms, Limits.max_duration_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Msg:
    """A message pushed to a member's device (``from`` on the wire is ``sender``).

    ``cmid`` and ``device`` are set only in the copy pushed to the sender's
    own devices. `msg_body` gives the same map for PULL and SYNC replies.
    """

    op: ClassVar[Op] = Op.MSG
    cid: str
    seq: int
    mid: str
    sender: str
    kind: int
    body: object
    ts: int
    cmid: str | None = None
    device: str | None = None
    reply_to: int | None = None
    mentions: tuple[str, ...] | None = None
    #: ``{cid, seq, from}`` of the original, when this is a forwarded copy.
    forward: Mapping[str, object] | None = None
    #: When the body was last replaced by an EDIT.
    edited_at: int | None = None
    #: True for a recalled message (a tombstone: its body is nil).
    recalled: bool | None = None

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_cid(self.cid)
        _check_uint("seq", self.seq)
        _check_id("mid", self.mid)
        _check_id("from", self.sender)
        _check_uint("kind", self.kind, Limits.max_kind)
        _check_uint("ts", self.ts)
        if self.cmid is not None:
            _check_cmid(self.cmid)
        if self.device is not None:
            _check_id("device", self.device)
        if self.reply_to is not None:
            _check_uint("reply_to", self.reply_to)
        _check_mentions(self.mentions)
        if self.forward is not None:
            _check_ref("forward", self.forward, ("cid", "seq", "from"))
        if self.edited_at is not None:
            _check_uint("edited_at", self.edited_at)
        if self.recalled is not None and self.recalled is not True:
            raise ValueError("recalled: must be true when present")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadState:
    """``user`` has read ``cid`` up to ``seq``."""

    op: ClassVar[Op] = Op.READ_STATE
    cid: str
    user: str
    seq: int

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_cid(self.cid)
        _check_id("user", self.user)
        _check_uint("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    """A notice written to the user's inbox: friend requests, invitations, ...

    ``type`` is a dotted name (``friend.requested``) and ``data`` its details.
    The same map (`notice_body`) is what inbox pulls return.
    """

    op: ClassVar[Op] = Op.NOTIFY
    nseq: int
    type: str
    data: Mapping[str, object]
    ts: int

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_uint("nseq", self.nseq)
        if not (
            isinstance(self.type, str)
            and 1 <= len(self.type) <= Limits.max_label_chars
            and _NOTICE_TYPE.fullmatch(self.type)
        ):
            raise ValueError(f"type: must be 1-{Limits.max_label_chars} chars of [a-z0-9_.]")
        if not (isinstance(self.data, Mapping) and all(isinstance(k, str) for k in self.data)):
            raise ValueError("data: must be a map with str keys")
        _check_uint("ts", self.ts)


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway:
    """The server is shutting down; reconnect after the given delay."""

    op: ClassVar[Op] = Op.GOAWAY
    reason: str
    reconnect_after_ms: int

    @property
    def rid(self) -> int:
        """Always 0: pushes answer no request."""
        return 0

    def __post_init__(self) -> None:
        _check_str("reason", self.reason, min_chars=0, max_chars=Limits.max_reason_chars)
        _check_uint("reconnect_after_ms", self.reconnect_after_ms, Limits.max_duration_ms)


ClientFrame: TypeAlias = (
    Hello
    | Ping
    | Auth
    | Send
    | Pull
    | Sync
    | Read
    | InboxPull
    | InboxAck
    | Typing
    | PresenceSet
    | Call
    | ConvSet
    | Readers
    | Recall
    | Edit
    | History
    | Hide
)
ServerFrame: TypeAlias = (
    Ok | Err | Msg | ReadState | Notify | GoAway | TypingEvent | Presence | CallEvent | ConvState
)
