"""``/api/v1/admin/``: server administration over HTTP (README.md, "Operating Sandcat").

Every route needs the access token of a server admin: 401 without a valid
token, 403 ``forbidden`` for everyone else (checked before anything is read).
The role is granted only on the command line (``sandcat admin grant-admin``):
no route here or anywhere grants it. Each action is audit-logged with the
admin's user id and the client address after the trusted-proxy rule.
"""

from __future__ import annotations

from quart import Blueprint, Response, g, request

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.admin import (
    MAX_AUDIT,
    MAX_DAYS,
    Actor,
    Admin,
    audit_dict,
    session_dict,
    stats_dict,
)
from sandcat.errors import BadRequest, Forbidden

_MAX_MS = 2**53 - 1


def admin_blueprint(accounts: Accounts, admin: Admin, *, max_body_bytes: int) -> Blueprint:
    routes = Blueprint("admin", __name__, url_prefix="/api/v1/admin")

    @routes.before_request
    async def server_admins_only() -> None:
        principal = await authenticated(accounts)
        if not await admin.is_admin(principal.user):
            raise Forbidden("server admins only")
        g.actor = Actor(principal.user, request.remote_addr or "?")

    def actor() -> Actor:
        found: Actor = g.actor
        return found

    @routes.get("/users")
    async def lookup() -> Response:
        query = request.args.get("q")
        if query is None:
            raise BadRequest("q: required", field="q")
        return json_response({"users": [view.as_dict() for view in await admin.lookup(query)]})

    @routes.post("/users")
    async def create() -> Response:
        body = await read_body(max_bytes=max_body_bytes)
        view = await admin.create_user(
            actor(),
            username=body.text("username"),
            password=body.text("password"),
            email=body.optional_text("email"),
            email_verified=body.flag("email_verified"),
            display_name=body.optional_text("display_name"),
        )
        return json_response({"user": view.as_dict()}, 201)

    @routes.get("/users/<user_id>")
    async def get_user(user_id: str) -> Response:
        return json_response({"user": (await admin.find(user_id)).as_dict()})

    @routes.delete("/users/<user_id>")
    async def delete_user(user_id: str) -> Response:
        return json_response({"user": (await admin.delete_user(actor(), user_id)).as_dict()})

    @routes.put("/users/<user_id>/password")
    async def set_password(user_id: str) -> Response:
        body = await read_body(max_bytes=max_body_bytes)
        ended = await admin.set_password(actor(), user_id, body.text("password"))
        return json_response({"ended_sessions": ended})

    @routes.post("/users/<user_id>/disable")
    async def disable(user_id: str) -> Response:
        return json_response({"ended_sessions": await admin.disable(actor(), user_id)})

    @routes.post("/users/<user_id>/enable")
    async def enable(user_id: str) -> Response:
        return json_response({"enabled": await admin.enable(actor(), user_id)})

    @routes.get("/users/<user_id>/sessions")
    async def sessions(user_id: str) -> Response:
        _, found = await admin.sessions(user_id)
        return json_response({"sessions": [session_dict(session) for session in found]})

    @routes.delete("/users/<user_id>/sessions")
    async def revoke_all(user_id: str) -> Response:
        ended = await admin.revoke_sessions(actor(), user_id, None)
        return json_response({"ended_sessions": ended})

    @routes.delete("/users/<user_id>/sessions/<session_id>")
    async def revoke_one(user_id: str, session_id: str) -> Response:
        ended = await admin.revoke_sessions(actor(), user_id, session_id)
        return json_response({"ended_sessions": ended})

    @routes.delete("/users/<user_id>/admin")
    async def revoke_admin(user_id: str) -> Response:
        return json_response({"revoked": await admin.revoke_admin(actor(), user_id)})

    @routes.post("/groups/<group_id>/dismiss")
    async def dismiss(group_id: str) -> Response:
        await admin.dismiss_group(actor(), group_id)
        return Response("", status=204)

    @routes.get("/stats")
    async def stats() -> Response:
        days = query_int("days", default=7, low=1, high=MAX_DAYS) or 7
        return json_response(stats_dict(await admin.stats(days=days)))

    @routes.post("/broadcast")
    async def broadcast() -> Response:
        body = await read_body(max_bytes=max_body_bytes)
        sent = await admin.broadcast(
            actor(), body.text("text"), level=body.optional_text("level") or "info"
        )
        return json_response({"users": sent})

    @routes.get("/audit")
    async def audit() -> Response:
        limit = query_int("limit", default=100, low=1, high=MAX_AUDIT) or 100
        entries = await admin.audit(
            actor=request.args.get("actor"),
            action=request.args.get("action"),
            since_ms=query_int("since", default=None, low=0, high=_MAX_MS),
            limit=limit,
        )
        return json_response({"entries": [audit_dict(entry) for entry in entries]})

    return routes
