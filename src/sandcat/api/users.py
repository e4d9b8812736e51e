"""``/api/v1/users``: my own account and profile, public profiles, and search."""

from __future__ import annotations

from quart import Blueprint, Response, request

from sandcat.api.bearer import SESSION_ENDED, SessionCloser, authenticated
from sandcat.api.payload import json_response, query_int, query_text, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.profiles import MAX_SEARCH_LIMIT, MAX_SEARCH_OFFSET, Profiles
from sandcat.store.accounts import User


def user_json(user: User, *, private: bool = False) -> dict[str, object]:
    """The wire form of a user; ``private`` adds what only its owner may see."""
    view: dict[str, object] = {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar": user.avatar,
        "gender": user.gender,
        "signature": user.signature,
        "region": user.region,
        "language": user.language,
        "created_at": user.created_at,
    }
    if private:
        view.update(
            email=user.email,
            phone=user.phone,
            birthday=user.birthday,
            find_by_email=user.find_by_email,
            find_by_phone=user.find_by_phone,
            read_receipts=user.read_receipts,
            last_login_at=user.last_login_at,
            last_login_ip=user.last_login_ip,
            last_login_device=user.last_login_device,
        )
    return view


def users_blueprint(
    accounts: Accounts, profiles: Profiles, closer: SessionCloser, *, max_body_bytes: int
) -> Blueprint:
    routes = Blueprint("users", __name__, url_prefix="/api/v1/users")

    @routes.get("/me")
    async def me() -> Response:
        principal = await authenticated(accounts)
        return json_response({"user": user_json(await profiles.me(principal.user), private=True)})

    @routes.patch("/me")
    async def update_me() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        user, pending = await profiles.update(principal.user, body.fields(), ip=request.remote_addr)
        return json_response({"user": user_json(user, private=True), "pending": list(pending)})

    @routes.post("/me/password")
    async def change_password() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        ended = await accounts.change_password(
            principal, current=body.text("current_password"), new=body.text("new_password")
        )
        for session in ended:
            closer.end_sessions(
                principal.user, session=session, code=SESSION_ENDED, reason="password changed"
            )
        return Response("", status=204)

    @routes.post("/me/disable")
    async def disable() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        await accounts.disable(principal, password=body.text("password"))
        closer.end_sessions(principal.user, code=SESSION_ENDED, reason="account disabled")
        return Response("", status=204)

    @routes.get("/search")
    async def search() -> Response:
        principal = await authenticated(accounts)
        limit = query_int("limit", default=20, low=1, high=MAX_SEARCH_LIMIT) or 20
        offset = query_int("offset", default=0, low=0, high=MAX_SEARCH_OFFSET) or 0
        found, more = await profiles.search(
            principal.user, query_text("q"), limit=limit, offset=offset
        )
        return json_response(
            {
                "users": [{**user_json(f.user), "match": f.match} for f in found],
                "next_offset": offset + limit if more else None,
            }
        )

    @routes.get("/<user_id>")
    async def profile(user_id: str) -> Response:
        principal = await authenticated(accounts)
        return json_response({"user": user_json(await profiles.public(principal.user, user_id))})

    return routes
