"""Conversation history over HTTP: pages in both directions, lookup by mid, hiding.

The same answers as the HISTORY and HIDE frames (SPEC.md "The timeline"): each message
is its MSG body, as JSON. Message bodies are msgpack values; the few that JSON
cannot hold are written as ``{"$bin": "<hex>"}`` (bin, as in the golden
vectors) and ``{"$float": "nan" | "inf" | "-inf"}``.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.clock import Clock
from sandcat.domain.accounts import Accounts
from sandcat.errors import BadRequest
from sandcat.protocol import Hide, History, Limits
from sandcat.store.history import HistoryStore
from sandcat.store.messages import Page, StoredMessage
from sandcat.view import entry

_MAX_SEQ = Limits.max_seq - 1


def json_value(value: object) -> object:
    """A msgpack value as JSON (see the module docstring)."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": str(value)}
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def message_json(user: str, message: StoredMessage) -> object:
    return json_value(entry(user, message))


def _page_json(user: str, page: Page) -> dict[str, object]:
    return {
        "messages": [message_json(user, m) for m in page.messages],
        "more": page.more,
        "min_seq": page.min_seq,
        "max_seq": page.max_seq,
    }


_Frame = TypeVar("_Frame", History, Hide)


def _checked(frame: type[_Frame], **fields: Any) -> _Frame:
    """The frame of these fields; its ``ValueError`` as a 422 naming the field."""
    try:
        return frame(**fields)
    except ValueError as exc:
        raise BadRequest(str(exc), field=str(exc).partition(":")[0]) from exc


def messages_blueprint(
    accounts: Accounts, history: HistoryStore, *, clock: Clock, max_body_bytes: int
) -> Blueprint:
    routes = Blueprint("messages", __name__, url_prefix="/api/v1")

    @routes.get("/conversations/<cid>/messages")
    async def page(cid: str) -> Response:
        principal = await authenticated(accounts)
        before = query_int("before", default=None, low=0, high=_MAX_SEQ)
        after = query_int("after", default=None, low=0, high=_MAX_SEQ)
        limit = query_int("limit", default=None, low=1, high=Limits.max_pull_limit)
        # The frame's rules are the route's: one cid, before or after, a limit.
        frame = _checked(
            History,
            rid=1,
            cid=cid,
            before=before,
            after=after,
            limit=limit or Limits.default_pull_limit,
        )
        assert frame.cid is not None
        found = await history.history(
            principal.user, frame.cid, before=frame.before, after=frame.after, limit=frame.limit
        )
        return json_response(_page_json(principal.user, found))

    @routes.get("/messages/<mid>")
    async def one(mid: str) -> Response:
        principal = await authenticated(accounts)
        message = await history.message(principal.user, mid)
        return json_response({"message": message_json(principal.user, message)})

    @routes.post("/conversations/<cid>/messages/hide")
    async def hide(cid: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        seqs = body.fields().get("seqs")
        if seqs is None:
            raise BadRequest("seqs: required", field="seqs")
        # The body is checked before the path: a bad body is a 422 for "seqs".
        frame = _checked(Hide, rid=1, cid="g:x", seqs=tuple(seqs) if isinstance(seqs, list) else ())
        frame = _checked(Hide, rid=1, cid=cid, seqs=frame.seqs)
        await history.hide(principal.user, frame.cid, frame.seqs, now_ms=clock())
        return Response("", status=204)

    return routes
