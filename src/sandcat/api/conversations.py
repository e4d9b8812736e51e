"""``/api/v1/conversations``: my conversation list, my settings of one, and its readers.

The HTTP twin of SYNC, CONV_SET and READERS (SPEC.md); a conversation is the
same map as a CONV, in JSON. Message bodies may hold msgpack bin values,
which JSON lacks: they are written as ``{"$bin": "<hex>"}``, as in the golden
vectors.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from sandcat.api.bearer import authenticated
from sandcat.api.messages import json_value
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.conversations import MAX_READERS_PAGE, Conversations
from sandcat.errors import BadRequest
from sandcat.ids import parse_id
from sandcat.protocol import Limits
from sandcat.store.conversations import Settings, SettingsChange
from sandcat.store.messages import ConversationState
from sandcat.view import conv_body

_MAX_SEQ = 2**53 - 1
_FLAGS = ("pinned", "muted", "hidden", "clear")


def conversation_json(user: str, state: ConversationState) -> object:
    """A CONV (SPEC.md "SYNC") as JSON."""
    return json_value(conv_body(user, state))


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
