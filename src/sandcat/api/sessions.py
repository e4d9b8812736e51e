"""``/api/v1/sessions``: my logged-in devices, and ending one of them."""

from __future__ import annotations

from quart import Blueprint, Response

from sandcat.api.bearer import SESSION_ENDED, SessionCloser, authenticated
from sandcat.api.payload import json_response
from sandcat.domain.accounts import Accounts


def sessions_blueprint(accounts: Accounts, closer: SessionCloser) -> Blueprint:
    routes = Blueprint("sessions", __name__, url_prefix="/api/v1/sessions")

    @routes.get("")
    async def list_sessions() -> Response:
        principal = await authenticated(accounts)
        return json_response(
            {
                "sessions": [
                    {
                        "id": s.id,
                        "device": s.device,
                        "platform": s.platform,
                        "created_at": s.created_at,
                        "last_used_at": s.last_used_at,
                        "expires_at": s.expires_at,
                        "ip": s.ip,
                        "current": s.id == principal.session,
                    }
                    for s in await accounts.sessions(principal.user)
                ]
            }
        )

    @routes.delete("/<session_id>")
    async def revoke(session_id: str) -> Response:
        principal = await authenticated(accounts)
        await accounts.revoke(principal.user, session_id)
        closer.end_sessions(
            principal.user, session=session_id, code=SESSION_ENDED, reason="session revoked"
        )
        return Response("", status=204)

    return routes
