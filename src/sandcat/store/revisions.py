"""The rules for recalling and editing a message, shared by every message store.

A recall or edit is a message of its own (kinds 11 and 12, SPEC.md §9) that
takes the next seq. Each store looks up the target in the append's
transaction and asks `judge` whether it may be revised; a refused one stores
nothing and takes no seq. Then the store turns the target into a tombstone
(recall: body nil, mentions gone) or gives it the new body and ``edited_at``
(G7: the target keeps its seq).
"""

from __future__ import annotations

from typing import Final

import msgpack

from sandcat.protocol import SERVER_KINDS, Kind
from sandcat.store.messages import NewMessage, Refused

#: The body of a recalled message.
TOMBSTONE: Final[bytes] = msgpack.packb(None)

_ADMINS: Final = ("owner", "admin")


def is_revision(new: NewMessage) -> bool:
    """Whether ``new`` is a recall or edit event (with a target)."""
    return new.kind in (Kind.RECALL, Kind.EDIT) and new.target is not None


def judge(
    new: NewMessage,
    *,
    now_ms: int,
    sender: str,
    kind: int,
    created: int,
    recalled: bool,
    role: str | None,
) -> Refused | None:
    """Why the recall or edit ``new`` may not revise its target; None if it may.

    Args:
        new: the recall or edit event.
        now_ms: the commit's time (windows are measured to it).
        sender, kind, created, recalled: the target message's.
        role: the reviser's role in the group (None: a direct conversation or
            not a group member).
    """
    action = "recalled" if new.kind == Kind.RECALL else "edited"
    if recalled:
        return Refused("bad_request", "seq: the message was recalled")
    if kind in SERVER_KINDS:
        return Refused("bad_request", f"seq: a kind {kind} message cannot be {action}")
    if new.kind == Kind.EDIT and kind != Kind.TEXT:
        return Refused("bad_request", "seq: only text messages can be edited")
    if new.kind == Kind.RECALL and role in _ADMINS:
        return None  # owners and admins recall any message of their group, at any time
    if sender != new.sender:
        who = "its sender or a group owner or admin" if new.kind == Kind.RECALL else "its sender"
        return Refused("forbidden", f"seq: only {who} may do that")
    if now_ms > created + new.window_ms:
        return Refused(
            "forbidden", f"seq: it can be {action} for {new.window_ms // 1000} s after sending"
        )
    return None
