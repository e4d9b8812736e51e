"""CONV_SET and READERS on a connection, and CONV_STATE pushes through the hub.

The connection's reader hands these frames here (``Operations.handle``); the
use cases are ``sandcat.domain.conversations``. ``SettingsPusher`` is that
domain's listener: it pushes CONV_STATE to the member's other devices, on
this instance and (through the hub's fan-out) on the others.
"""

from __future__ import annotations

from typing import Protocol

from sandcat.domain.conversations import Conversations
from sandcat.gateway.peer import Peer
from sandcat.protocol import ConvSet, ConvState, Ok, Readers, encode
from sandcat.store.conversations import Settings, SettingsChange


class Pusher(Protocol):
    def push_each(self, targets: list[tuple[str, str | None]], frame: bytes) -> None: ...


def settings_body(settings: Settings) -> dict[str, object]:
    """The settings as CONV_SET's reply and CONV_STATE's body carry them."""
    return {
        "cid": settings.cid,
        "pinned": settings.pinned,
        "muted": settings.muted,
        "hidden": settings.hidden,
        "cleared_seq": settings.cleared_seq,
    }


class SettingsPusher:
    """Tells a member's devices that their settings of a conversation changed."""

    def __init__(self, hub: Pusher) -> None:
        self._hub = hub

    def settings_changed(self, user: str, settings: Settings, *, skip_device: str | None) -> None:
        frame = ConvState(
            cid=settings.cid,
            pinned=settings.pinned,
            muted=settings.muted,
            hidden=settings.hidden,
            cleared_seq=settings.cleared_seq,
        )
        self._hub.push_each([(user, skip_device)], encode(frame))


class ConversationFrames:
    """Answers CONV_SET and READERS."""

    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations

    async def handle(self, conn: Peer, frame: ConvSet | Readers) -> None:
        if isinstance(frame, ConvSet):
            change = SettingsChange(
                pinned=frame.pinned, muted=frame.muted, hidden=frame.hidden, clear=bool(frame.clear)
            )
            settings = await self._conversations.update(
                conn.user, frame.cid, change, device=conn.device
            )
            conn.push(encode(Ok(rid=frame.rid, body=settings_body(settings))))
            return
        page = await self._conversations.readers(
            conn.user, frame.cid, frame.seq, after=frame.after, limit=frame.limit
        )
        body: dict[str, object] = {"read": list(page.read), "unread": list(page.unread)}
        if page.next is not None:
            body["next"] = page.next
        conn.push(encode(Ok(rid=frame.rid, body=body)))
