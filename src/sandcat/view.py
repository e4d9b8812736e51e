"""How stored messages and conversations look on the wire: MSG and CONV bodies.

One module for both edges: the gateway (MSG pushes, PULL, HISTORY, SYNC) and
the HTTP API (message lists, the conversation list) render through it, and
the send path's delivery builds its MSG pushes with ``msg_frame``.
"""

from __future__ import annotations

from typing import Any

import msgpack

from sandcat.protocol import Msg, encode_msg, msg_body, parse_cid
from sandcat.store.messages import ConversationState, Origin, StoredMessage


def msg_frame(message: StoredMessage, body: object, *, own: bool) -> Msg:
    """The MSG push (or PULL entry) for a stored message; ``own``: with ``cmid``
    and ``device``, for the sender's devices (protocol/SPEC.md §4.12)."""
    return Msg(**_msg_fields(message, body, own=own))


def msg_push(message: StoredMessage, body: object, *, own: bool) -> bytes:
    """The encoded MSG push of a stored message: ``encode(msg_frame(...))`` without
    building and re-checking the frame (``protocol.encode_msg``)."""
    return encode_msg(**_msg_fields(message, body, own=own))


def _msg_fields(message: StoredMessage, body: object, *, own: bool) -> dict[str, Any]:
    """MSG's fields for a stored message, as ``Msg`` and ``encode_msg`` take them."""
    return {
        "cid": message.cid,
        "seq": message.seq,
        "mid": message.mid,
        "sender": message.sender,
        "kind": message.kind,
        "body": body,
        "ts": message.ts,
        "cmid": message.cmid if own else None,
        "device": message.device if own else None,
        "reply_to": message.reply_to,
        "mentions": message.mentions,
        "forward": None if message.forward is None else origin_body(message.forward),
        "edited_at": message.edited_at,
        "recalled": message.recalled or None,
    }


def origin_body(origin: Origin) -> dict[str, object]:
    """MSG's ``forward`` map: where a forwarded copy came from."""
    return {"cid": origin.cid, "seq": origin.seq, "from": origin.sender}


def entry(user: str, message: StoredMessage) -> dict[str, object]:
    """The MSG body of a stored message as ``user`` sees it (PULL, HISTORY, SYNC)."""
    body = msgpack.unpackb(message.body, raw=False)
    return msg_body(msg_frame(message, body, own=message.sender == user))


def conv_body(user: str, state: ConversationState) -> dict[str, object]:
    """A CONV (SPEC.md "SYNC") as ``user`` sees it: SYNC's entries and the HTTP list's."""
    conv: dict[str, object] = {"cid": state.cid, "kind": state.kind}
    cid = parse_cid(state.cid)
    if cid.group is None:
        conv["peer"] = cid.peer_of(user)
    else:
        conv["group"] = cid.group
    conv.update(
        max_seq=state.max_seq,
        min_seq=state.min_seq,
        read_seq=state.read_seq,
        muted=state.muted,
        pinned=state.pinned,
        unread=state.unread,
        mention=state.mention,
        hidden=state.hidden,
        cleared_seq=state.cleared_seq,
    )
    if state.peer_read_seq is not None:
        conv["peer_read_seq"] = state.peer_read_seq
    if state.last is not None:
        conv["last"] = entry(user, state.last)
    return conv
