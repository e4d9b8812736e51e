"""``/api/v1/calls``: what a client needs to place calls (TURN credentials)."""

from __future__ import annotations

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response
from sandcat.domain.accounts import Accounts
from sandcat.domain.turn import TurnRelay


def calls_blueprint(accounts: Accounts, turn: TurnRelay) -> Blueprint:
    routes = Blueprint("calls", __name__, url_prefix="/api/v1/calls")

    @routes.get("/turn")
    async def turn_credentials() -> Response:
        principal = await authenticated(accounts)
        issued = turn.credentials(principal.user)
        return json_response(
            {
                "username": issued.username,
                "credential": issued.credential,
                "ttl": issued.ttl_s,
                "uris": list(issued.uris),
            }
        )

    return routes
