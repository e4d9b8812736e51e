"""Typed results of the request frames, built from OK bodies.

The protocol package turns bytes into frames; an OK frame's body is a plain
map whose shape depends on the request (protocol/SPEC.md §5). These classes give
those shapes names and types, and `message` turns a MSG body embedded in a
PULL or SYNC reply into the same `Msg` a push decodes to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from sandcat.protocol import Msg, Notify, Op, RequestError, decode_server

__all__ = ["Ack", "Conversation", "Page", "SyncResult", "message"]


def message(body: object) -> Msg:
    """The `Msg` for a MSG body found inside a reply.

    Raises:
        ValueError: the body is not a valid MSG body.
    """
    # Decoding it as a push reuses the codec's field mapping and checks, so a
    # pulled message is exactly what the same message pushed would be.
    try:
        frame = decode_server(msgpack.packb([Op.MSG, 0, body], use_bin_type=True))
    except RequestError as exc:
        raise ValueError(f"invalid message in reply: {exc}") from exc
    assert isinstance(frame, Msg)
    return frame


def _int(body: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"reply field {key!r}: expected an int, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The server committed a SEND: it is message ``seq`` of ``cid``."""

    cid: str
    seq: int
    mid: str
    ts: int
    cmid: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any], cmid: str) -> Ack:
        return cls(
            cid=str(body["cid"]),
            seq=_int(body, "seq"),
            mid=str(body["mid"]),
            ts=_int(body, "ts"),
            cmid=cmid,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """A PULL reply: messages with seq > after, ascending.

    ``min_seq`` is the oldest seq the server still keeps; messages below it
    are gone (retention) and will not be returned (G4).
    """

    msgs: Sequence[Msg]
    more: bool
    min_seq: int
    max_seq: int

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Page:
        return cls(
            msgs=tuple(message(entry) for entry in body.get("msgs", ())),
            more=bool(body.get("more", False)),
            min_seq=_int(body, "min_seq", 0),
            max_seq=_int(body, "max_seq", 0),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """One conversation in a SYNC reply (a CONV map)."""

    cid: str
    kind: str
    max_seq: int
    min_seq: int
    read_seq: int
    peer: str | None = None
    group: str | None = None
    muted: bool = False
    pinned: bool = False
    last: Msg | None = None
    unread: int = 0
    mention: bool = False
    hidden: bool = False
    cleared_seq: int = 0
    peer_read_seq: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Conversation:
        last = body.get("last")
        return cls(
            cid=str(body["cid"]),
            kind=str(body["kind"]),
            max_seq=_int(body, "max_seq"),
            min_seq=_int(body, "min_seq", 0),
            read_seq=_int(body, "read_seq", 0),
            peer=body.get("peer"),
            group=body.get("group"),
            muted=bool(body.get("muted", False)),
            pinned=bool(body.get("pinned", False)),
            last=None if last is None else message(last),
            unread=_int(body, "unread", 0),
            mention=bool(body.get("mention", False)),
            hidden=bool(body.get("hidden", False)),
            cleared_seq=_int(body, "cleared_seq", 0),
            peer_read_seq=None
            if body.get("peer_read_seq") is None
            else _int(body, "peer_read_seq"),
        )


@dataclass(frozen=True, slots=True)
class ReadersPage:
    """A READERS reply: one page of a group's members by whether they read a seq."""

    read: Sequence[str]
    unread: Sequence[str]
    #: Pass as ``after`` for the next page; None on the last one.
    next: str | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ReadersPage:
        after = body.get("next")
        return cls(
            read=tuple(str(u) for u in body.get("read", ())),
            unread=tuple(str(u) for u in body.get("unread", ())),
            next=None if after is None else str(after),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """A SYNC reply: conversations (changed since ``since``) and the new version."""

    convs: Sequence[Conversation]
    version: int
    inbox_max: int
    #: Only for a paged SYNC: the page was full; sync again ``since`` its version.
    more: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SyncResult:
        return cls(
            convs=tuple(Conversation.from_body(conv) for conv in body.get("convs", ())),
            version=_int(body, "version"),
            inbox_max=_int(body, "inbox_max", 0),
            more=bool(body.get("more", False)),
        )


@dataclass(frozen=True, slots=True)
class InboxPage:
    """An INBOX_PULL reply: notices with nseq > after, ascending."""

    notices: Sequence[Notify]
    more: bool
    max_nseq: int

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> InboxPage:
        return cls(
            notices=tuple(
                Notify(
                    nseq=_int(entry, "nseq"),
                    type=str(entry.get("type", "")),
                    data=dict(entry.get("data") or {}),
                    ts=_int(entry, "ts", 0),
                )
                for entry in body.get("notices", ())
            ),
            more=bool(body.get("more", False)),
            max_nseq=_int(body, "max_nseq", 0),
        )
