"""``/api/v1/inbox``: the caller's notices, pulled and acknowledged per device."""

from __future__ import annotations

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.inbox import DEFAULT_LIMIT, MAX_LIMIT, Inbox
from sandcat.store.inbox import Notice

_MAX_SEQ = 2**53 - 1


def notice_json(notice: Notice) -> dict[str, object]:
    """The notice body of SPEC.md §4.14 (NOTIFY), as JSON."""
    return {
        "nseq": notice.nseq,
        "type": notice.type,
        "data": dict(notice.data),
        "ts": notice.created_at,
    }


def inbox_blueprint(accounts: Accounts, inbox: Inbox, *, max_body_bytes: int) -> Blueprint:
    routes = Blueprint("inbox", __name__, url_prefix="/api/v1/inbox")

    @routes.get("")
    async def pull() -> Response:
        principal = await authenticated(accounts)
        after = query_int("after", default=None, low=0, high=_MAX_SEQ)
        limit = query_int("limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
        page = await inbox.pull(principal.user, principal.device, after=after, limit=limit)
        return json_response(
            {
                "notices": [notice_json(n) for n in page.notices],
                "more": page.more,
                "max_nseq": page.max_nseq,
            }
        )

    @routes.post("/ack")
    async def ack() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        acked = await inbox.ack(principal.user, principal.device, body.integer("upto"))
        return json_response({"acked": acked})

    return routes
