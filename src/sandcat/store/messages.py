"""The message log: conversations, their seqs and the messages in them.

The send path's persister calls ``append`` with a whole batch; everything in
it commits in one transaction or not at all (G1). Seqs are allocated inside
that transaction, only for sends that are stored, so refused sends consume no
seq (G3) and a resend of a stored ``(sender, cid, cmid)`` returns the original
row (G2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a forwarded message came from: the original's place and sender."""

    cid: str
    seq: int
    sender: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A send to be stored; ``body`` is the msgpack encoding of the body value.

    A recall or edit event (kinds 11 and 12) names its ``target`` seq; the
    store checks it may be revised (the sender's ``window_ms`` after it was
    sent, or a group owner or admin for a recall) in the append's transaction.
    """

    sender: str
    device: str
    cid: str
    cmid: str
    kind: int
    body: bytes
    reply_to: int | None = None
    mentions: tuple[str, ...] | None = None
    #: Uploads the body refers to (checked by the gateway; recorded with the message).
    files: tuple[str, ...] = ()
    #: A forwarded copy: the original (checked by the gateway).
    forward: Origin | None = None
    #: Recall and edit events: the seq they revise, and the sender's window for it.
    target: int | None = None
    window_ms: int = 0
    #: Edit events: the target's new body (msgpack).
    replacement: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    cid: str
    seq: int
    mid: str
    sender: str
    device: str
    cmid: str
    kind: int
    body: bytes
    ts: int
    reply_to: int | None = None
    mentions: tuple[str, ...] | None = None
    forward: Origin | None = None
    #: When an edit last replaced the body; None if never edited.
    edited_at: int | None = None
    #: A recalled message is a tombstone: its body is msgpack nil.
    recalled: bool = False


@dataclass(frozen=True, slots=True)
class Appended:
    """A send that is committed: newly (``duplicate`` False) or earlier."""

    message: StoredMessage
    duplicate: bool
    #: Every member to deliver to (empty for duplicates: they were delivered).
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """A send that was not stored and consumed no seq."""

    #: "unavailable" only from ``Pipeline.commit``: the store failed, or the pipeline closed.
    code: Literal["forbidden", "bad_request", "unavailable"]
    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """An answer to PULL: messages with seq > after, ascending."""

    messages: tuple[StoredMessage, ...]
    more: bool
    min_seq: int
    max_seq: int


@dataclass(frozen=True, slots=True)
class ConversationState:
    """One conversation as one member sees it (a CONV in SYNC).

    ``min_seq`` is the first seq this member can pull (after retention and
    their cleared seq); ``unread`` and ``mention`` count from the later of the
    read and cleared seqs (SPEC.md "SYNC").
    """

    cid: str
    kind: Literal["direct", "group"]
    max_seq: int
    min_seq: int
    read_seq: int
    muted: bool
    pinned: bool
    last: StoredMessage | None
    unread: int = 0
    hidden: bool = False
    cleared_seq: int = 0
    mention: bool = False
    #: Direct only, when both users have read receipts on: the peer's read seq.
    peer_read_seq: int | None = None


@dataclass(frozen=True, slots=True)
class ReadMark:
    """The result of READ: the reader's read seq and who to tell about it."""

    seq: int
    advanced: bool
    #: Members other than the reader who see read state (the direct peer).
    observers: tuple[str, ...]


class MessageStore(Protocol):
    async def append(
        self, batch: Sequence[NewMessage], *, now_ms: int, open_direct: bool
    ) -> list[Appended | Refused]:
        """Store a batch atomically; one outcome per send, in order.

        ``open_direct`` lets a send open a direct conversation between two
        existing users that are not friends (``dm_policy = "anyone"``).
        Raises ``StoreUnavailable`` and stores nothing if the commit fails, and
        ``RejectedValue`` (storing nothing) if a send holds a value the store
        cannot take.
        """
        ...

    async def pull(self, user: str, cid: str, *, after: int, limit: int) -> Page:
        """Messages of ``cid`` after ``after``; ``Forbidden`` if not a member."""
        ...

    async def conversations(
        self, user: str, *, since: int | None, limit: int | None = None
    ) -> tuple[list[ConversationState], int]:
        """The user's conversations changed after ``since`` (all if None), and the version.

        A ``since`` above the current version (a restored database) gets them all.
        With ``limit``: the oldest changes first, about ``limit`` of them (a
        version is never split), and that page's version to continue from.
        """
        ...

    async def mark_read(self, user: str, cid: str, seq: int, *, now_ms: int) -> ReadMark:
        """Advance the user's read seq (never backwards); ``Forbidden`` if not a member."""
        ...
