"""Conversations and history over HTTP: the twins of SYNC, CONV_SET, READERS, HISTORY, HIDE.

Messages come as their MSG bodies in JSON, with msgpack bin values as
``{"$bin": hex}`` and non-finite floats as ``{"$float": "nan"}`` (SPEC.md
§13); `msgpack_value` undoes that, so a message read over HTTP is the same
`Msg` (and a conversation the same `Conversation`) as over the WebSocket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandcat.protocol import Msg

from .http_transport import HttpTransport, _fields
from .replies import Conversation, Page, ReadersPage, message

__all__ = ["ConversationList", "ConversationRoutes", "ConversationSettings", "msgpack_value"]


def msgpack_value(value: object) -> object:
    """A JSON value of the API as the msgpack value it stands for."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bin"), str):
            return bytes.fromhex(value["$bin"])
        if len(value) == 1 and isinstance(value.get("$float"), str):
            return float(value["$float"])
        return {key: msgpack_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [msgpack_value(item) for item in value]
    return value


def _map(value: object) -> Mapping[str, Any]:
    decoded = msgpack_value(value)
    if not isinstance(decoded, dict):
        raise ValueError(f"expected a JSON object, got {value!r}")
    return decoded


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationList:
    """Your conversations (changed after ``since``, if given) and the version to pass next."""

    conversations: Sequence[Conversation]
    version: int
    #: Only with ``limit``: the page was full; ask again ``since`` this version.
    more: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSettings:
    """Your own settings of a conversation (as CONV_SET's reply)."""

    cid: str
    pinned: bool
    muted: bool
    hidden: bool
    cleared_seq: int


class ConversationRoutes(HttpTransport):
    """The ``/conversations`` and ``/messages`` routes."""

    async def conversations(
        self, token: str, *, since: int | None = None, limit: int | None = None
    ) -> ConversationList:
        """Your conversations, as SYNC: all, or those changed after version ``since``."""
        query = {"since": since, "limit": limit}
        reply = await self._request("GET", "/conversations", token=token, query=query)
        return ConversationList(
            conversations=tuple(Conversation.from_body(_map(c)) for c in reply["conversations"]),
            version=int(reply["version"]),
            more=bool(reply.get("more", False)),
        )

    async def update_conversation(
        self,
        token: str,
        cid: str,
        *,
        pinned: bool | None = None,
        muted: bool | None = None,
        hidden: bool | None = None,
        clear: bool | None = None,
    ) -> ConversationSettings:
        """Pin, mute, hide, or clear the history (``clear=True``) of a conversation, for you."""
        body = _fields(pinned=pinned, muted=muted, hidden=hidden, clear=clear)
        reply = await self._request("PATCH", f"/conversations/{cid}", json=body, token=token)
        settings = reply["conversation"]
        return ConversationSettings(
            cid=str(settings["cid"]),
            pinned=bool(settings["pinned"]),
            muted=bool(settings["muted"]),
            hidden=bool(settings["hidden"]),
            cleared_seq=int(settings["cleared_seq"]),
        )

    async def readers(
        self,
        token: str,
        cid: str,
        seq: int,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> ReadersPage:
        """A page of a group's members by whether they have read up to ``seq``."""
        query = {"seq": seq, "after": after, "limit": limit}
        path = f"/conversations/{cid}/readers"
        return ReadersPage.from_body(await self._request("GET", path, token=token, query=query))

    async def messages(
        self,
        token: str,
        cid: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Page:
        """A page of messages, ascending: below ``before``, above ``after``, or the latest."""
        query = {"before": before, "after": after, "limit": limit}
        reply = await self._request(
            "GET", f"/conversations/{cid}/messages", token=token, query=query
        )
        return Page.from_body({**reply, "msgs": [_map(m) for m in reply["messages"]]})

    async def message(self, token: str, mid: str) -> Msg:
        """One message by its mid, if you may see it (404 otherwise)."""
        reply = await self._request("GET", f"/messages/{mid}", token=token)
        return message(_map(reply["message"]))

    async def hide_messages(self, token: str, cid: str, seqs: Sequence[int]) -> None:
        """Hide messages from yourself only, on all your devices (≤ 200 seqs)."""
        path = f"/conversations/{cid}/messages/hide"
        await self._request("POST", path, json={"seqs": list(seqs)}, token=token)
