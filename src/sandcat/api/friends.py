"""``/api/v1/friends`` and ``/api/v1/blocks``: requests, friends, blocks, sync."""

from __future__ import annotations

from quart import Blueprint, Response, request

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.contacts import Contacts
from sandcat.ids import direct_cid
from sandcat.store.contacts import Blocked, Friend, FriendRequest

_MAX_VERSION = 2**53 - 1


def request_json(friend_request: FriendRequest) -> dict[str, object]:
    return {
        "id": friend_request.id,
        "from": friend_request.from_user,
        "to": friend_request.to_user,
        "message": friend_request.message,
        "remark": friend_request.remark,
        "status": friend_request.status,
        "created_at": friend_request.created_at,
        "updated_at": friend_request.updated_at,
    }


def friend_json(user: str, friend: Friend) -> dict[str, object]:
    """``friend`` as ``user`` sees them, with the cid of their direct conversation."""
    view: dict[str, object] = {
        "id": friend.id,
        "username": friend.username,
        "display_name": friend.display_name,
        "avatar": friend.avatar,
        "remark": friend.remark,
        "since": friend.since,
        "cid": direct_cid(user, friend.id),
    }
    if friend.deleted:
        view["deleted"] = True
    return view


def blocked_json(blocked: Blocked) -> dict[str, object]:
    return {
        "id": blocked.id,
        "username": blocked.username,
        "display_name": blocked.display_name,
        "avatar": blocked.avatar,
        "since": blocked.since,
    }


def friends_blueprint(accounts: Accounts, contacts: Contacts, *, max_body_bytes: int) -> Blueprint:
    routes = Blueprint("friends", __name__, url_prefix="/api/v1/friends")

    @routes.get("")
    async def list_friends() -> Response:
        principal = await authenticated(accounts)
        friends = await contacts.list_friends(principal.user)
        return json_response({"friends": [friend_json(principal.user, f) for f in friends]})

    @routes.get("/sync")
    async def sync() -> Response:
        principal = await authenticated(accounts)
        since = query_int("since", default=0, low=0, high=_MAX_VERSION) or 0
        changes = await contacts.changes(principal.user, since)
        return json_response(
            {
                "friends": [friend_json(principal.user, f) for f in changes.friends],
                "requests": [request_json(r) for r in changes.requests],
                "version": changes.version,
            }
        )

    @routes.patch("/<friend_id>")
    async def set_remark(friend_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        friend = await contacts.set_remark(principal.user, friend_id, body.text("remark"))
        return json_response({"friend": friend_json(principal.user, friend)})

    @routes.delete("/<friend_id>")
    async def delete(friend_id: str) -> Response:
        principal = await authenticated(accounts)
        await contacts.delete(principal.user, friend_id)
        return Response("", status=204)

    @routes.post("/requests")
    async def send_request() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        sent = await contacts.send_request(
            principal.user,
            to=body.text("to"),
            message=body.optional_text("message") or "",
            remark=body.optional_text("remark") or "",
            ip=request.remote_addr,
        )
        return json_response({"request": request_json(sent)}, 201)

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

    @routes.post("/requests/<request_id>/cancel")
    async def cancel(request_id: str) -> Response:
        principal = await authenticated(accounts)
        await read_body(max_bytes=max_body_bytes)
        request = await contacts.cancel(principal.user, request_id)
        return json_response({"request": request_json(request)})

    return routes


def blocks_blueprint(accounts: Accounts, contacts: Contacts) -> Blueprint:
    routes = Blueprint("blocks", __name__, url_prefix="/api/v1/blocks")

    @routes.get("")
    async def list_blocks() -> Response:
        principal = await authenticated(accounts)
        blocked = await contacts.list_blocks(principal.user)
        return json_response({"blocks": [blocked_json(b) for b in blocked]})

    @routes.put("/<user_id>")
    async def block(user_id: str) -> Response:
        principal = await authenticated(accounts)
        await contacts.block(principal.user, user_id)
        return Response("", status=204)

    @routes.delete("/<user_id>")
    async def unblock(user_id: str) -> Response:
        principal = await authenticated(accounts)
        await contacts.unblock(principal.user, user_id)
        return Response("", status=204)

    return routes
