"""``/api/v1/conversations``: my conversation list, my settings of one, and its readers.

The HTTP twin of SYNC, CONV_SET and READERS (SPEC.md); a conversation is the
same map as a CONV, in JSON. Message bodies may hold msgpack bin values,
which JSON lacks: they are written as ``{"$bin": "<hex>"}``, as in the golden
vectors.
"""

from __future__ import annotations

import msgpack
from quart import Blueprint, Response, request

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.conversations import MAX_READERS_PAGE, Conversations
from sandcat.errors import BadRequest
from sandcat.ids import parse_id
from sandcat.pipeline.router import msg_frame
from sandcat.protocol import Limits, msg_body
from sandcat.store.conversations import Settings, SettingsChange
from sandcat.store.messages import ConversationState

_MAX_SEQ = 2**53 - 1
_FLAGS = ("pinned", "muted", "hidden", "clear")


def _json_safe(value: object) -> object:
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def conversation_json(user: str, state: ConversationState) -> dict[str, object]:
    """A CONV (SPEC.md "SYNC") as JSON."""
    view: dict[str, object] = {"cid": state.cid, "kind": state.kind}
    parts = state.cid.split(":")
    if state.kind == "direct":
        view["peer"] = parts[2] if parts[1] == user else parts[1]
    else:
        view["group"] = parts[1]
    view.update(
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
        view["peer_read_seq"] = state.peer_read_seq
    if state.last is not None:
        body = msgpack.unpackb(state.last.body, raw=False)
        last = msg_body(msg_frame(state.last, body, own=state.last.sender == user))
        view["last"] = _json_safe(last)
    return view


def settings_json(settings: Settings) -> dict[str, object]:
    return {
        "cid": settings.cid,
        "pinned": settings.pinned,
        "muted": settings.muted,
        "hidden": settings.hidden,
        "cleared_seq": settings.cleared_seq,
    }


def _change(fields: dict[str, object]) -> SettingsChange:
    for name, value in fields.items():
        if name not in _FLAGS:
            raise BadRequest(f"{name}: not a conversation setting", field=name)
        if not isinstance(value, bool):
            raise BadRequest(f"{name}: must be true or false", field=name)
    flags: dict[str, bool] = {k: v for k, v in fields.items() if isinstance(v, bool)}
    return SettingsChange(
        pinned=flags.get("pinned"),
        muted=flags.get("muted"),
        hidden=flags.get("hidden"),
        clear=flags.get("clear", False),
    )


def conversations_blueprint(
    accounts: Accounts, conversations: Conversations, *, max_body_bytes: int
) -> Blueprint:
    routes = Blueprint("conversations", __name__, url_prefix="/api/v1/conversations")

    @routes.get("")
    async def mine() -> Response:
        principal = await authenticated(accounts)
        since = query_int("since", default=None, low=0, high=_MAX_SEQ)
        limit = query_int("limit", default=None, low=1, high=Limits.max_sync_limit)
        states, version = await conversations.list(principal.user, since=since, limit=limit)
        answer: dict[str, object] = {
            "conversations": [conversation_json(principal.user, s) for s in states],
            "version": version,
        }
        if limit is not None:
            answer["more"] = len(states) >= limit
        return json_response(answer)

    @routes.patch("/<cid>")
    async def update(cid: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        settings = await conversations.update(principal.user, cid, _change(dict(body.fields())))
        return json_response({"conversation": settings_json(settings)})

    @routes.get("/<cid>/readers")
    async def readers(cid: str) -> Response:
        principal = await authenticated(accounts)
        seq = query_int("seq", default=None, low=0, high=_MAX_SEQ)
        if seq is None:
            raise BadRequest("seq: required", field="seq")
        raw_after = request.args.get("after")
        after = None if raw_after is None else parse_id(raw_after, field="after")
        limit = query_int("limit", default=MAX_READERS_PAGE, low=1, high=MAX_READERS_PAGE)
        page = await conversations.readers(
            principal.user, cid, seq, after=after, limit=limit or MAX_READERS_PAGE
        )
        return json_response(
            {"read": list(page.read), "unread": list(page.unread), "next": page.next}
        )

    return routes
