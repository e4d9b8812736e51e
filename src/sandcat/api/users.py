"""``/api/v1/users``: the caller's own account and public profiles."""

from __future__ import annotations

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response
from sandcat.domain.accounts import Accounts
from sandcat.ids import parse_id
from sandcat.store.accounts import User


def user_json(user: User, *, private: bool = False) -> dict[str, object]:
    """The wire form of a user; ``private`` adds what only its owner may see."""
    view: dict[str, object] = {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar": user.avatar,
        "created_at": user.created_at,
    }
    if private:
        view["email"] = user.email
        view["phone"] = user.phone
    return view


def users_blueprint(accounts: Accounts) -> Blueprint:
    routes = Blueprint("users", __name__, url_prefix="/api/v1/users")

    @routes.get("/me")
    async def me() -> Response:
        principal = await authenticated(accounts)
        user = await accounts.get_user(principal.user)
        return json_response({"user": user_json(user, private=True)})

    @routes.get("/<user_id>")
    async def profile(user_id: str) -> Response:
        await authenticated(accounts)
        user = await accounts.get_user(parse_id(user_id, field="id"))
        return json_response({"user": user_json(user)})

    return routes
