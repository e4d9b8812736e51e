"""``/api/v1/friends``: friend requests and the friend list."""

from __future__ import annotations

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.contacts import Contacts
from sandcat.ids import direct_cid
from sandcat.store.contacts import Friend, FriendRequest


def request_json(request: FriendRequest) -> dict[str, object]:
    return {
        "id": request.id,
        "from": request.from_user,
        "to": request.to_user,
        "message": request.message,
        "remark": request.remark,
        "status": request.status,
        "created_at": request.created_at,
        "updated_at": request.updated_at,
    }


def friend_json(user: str, friend: Friend) -> dict[str, object]:
    """``friend`` as ``user`` sees them, with the cid of their direct conversation."""
    return {
        "id": friend.id,
        "username": friend.username,
        "display_name": friend.display_name,
        "avatar": friend.avatar,
        "remark": friend.remark,
        "since": friend.since,
        "cid": direct_cid(user, friend.id),
    }


def friends_blueprint(accounts: Accounts, contacts: Contacts, *, max_body_bytes: int) -> Blueprint:
    routes = Blueprint("friends", __name__, url_prefix="/api/v1/friends")

    @routes.get("")
    async def list_friends() -> Response:
        principal = await authenticated(accounts)
        friends = await contacts.list_friends(principal.user)
        return json_response({"friends": [friend_json(principal.user, f) for f in friends]})

    @routes.post("/requests")
    async def send_request() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        request = await contacts.send_request(
            principal.user,
            to=body.text("to"),
            message=body.optional_text("message") or "",
            remark=body.optional_text("remark") or "",
        )
        return json_response({"request": request_json(request)}, 201)

    @routes.get("/requests")
    async def list_requests() -> Response:
        principal = await authenticated(accounts)
        pending = await contacts.list_requests(principal.user)
        return json_response(
            {
                "incoming": [request_json(r) for r in pending if r.to_user == principal.user],
                "outgoing": [request_json(r) for r in pending if r.from_user == principal.user],
            }
        )

    @routes.post("/requests/<request_id>/accept")
    async def accept(request_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        friend = await contacts.accept(
            principal.user, request_id, remark=body.optional_text("remark") or ""
        )
        return json_response({"friend": friend_json(principal.user, friend)})

    @routes.post("/requests/<request_id>/reject")
    async def reject(request_id: str) -> Response:
        principal = await authenticated(accounts)
        await read_body(max_bytes=max_body_bytes)
        request = await contacts.reject(principal.user, request_id)
        return json_response({"request": request_json(request)})

    return routes
