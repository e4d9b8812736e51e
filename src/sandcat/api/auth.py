"""``/api/v1/auth``: register, login, refresh and logout."""

from __future__ import annotations

from typing import Protocol

from quart import Blueprint, Response, request

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, read_body
from sandcat.api.users import user_json
from sandcat.config import Config
from sandcat.domain.accounts import Accounts, TokenPair, TokenReused

#: Close code for a session ended by logout or revocation (PROTOCOL.md §3).
SESSION_ENDED = 4007


class SessionCloser(Protocol):
    """Closes live sockets; the gateway's connection hub implements it."""

    def end_sessions(
        self, user: str, *, session: str | None = None, code: int = 4007, reason: str = ""
    ) -> None:
        """Close the sockets of ``session`` (all of ``user``'s if None); never blocks."""


def _tokens_json(pair: TokenPair) -> dict[str, object]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": pair.expires_in,
    }


def auth_blueprint(accounts: Accounts, sessions: SessionCloser, config: Config) -> Blueprint:
    routes = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
    max_bytes = config.http.max_body_bytes

    @routes.post("/register")
    async def register() -> Response:
        body = await read_body(max_bytes=max_bytes)
        user = await accounts.register(
            username=body.text("username"),
            password=body.text("password"),
            email=body.optional_text("email"),
            display_name=body.optional_text("display_name"),
            code=body.optional_text("code"),
        )
        return json_response({"user": user_json(user, private=True)}, 201)

    @routes.post("/login")
    async def login() -> Response:
        body = await read_body(max_bytes=max_bytes)
        result = await accounts.login(
            login=body.text("login"),
            password=body.text("password"),
            device=body.optional_text("device"),
            platform=body.optional_text("platform"),
            ip=request.remote_addr,
        )
        payload = _tokens_json(result.tokens)
        payload["user"] = user_json(result.user, private=True)
        payload["ws_url"] = config.ws_url
        payload["device"] = result.principal.device
        payload["session"] = result.principal.session
        return json_response(payload)

    @routes.post("/refresh")
    async def refresh() -> Response:
        body = await read_body(max_bytes=max_bytes)
        try:
            pair = await accounts.refresh(body.text("refresh_token"), ip=request.remote_addr)
        except TokenReused as exc:
            sessions.end_sessions(
                exc.user, session=exc.session, code=SESSION_ENDED, reason="refresh token reused"
            )
            raise
        return json_response(_tokens_json(pair))

    @routes.post("/logout")
    async def logout() -> Response:
        principal = await authenticated(accounts)
        await accounts.logout(principal)
        sessions.end_sessions(
            principal.user, session=principal.session, code=SESSION_ENDED, reason="logged out"
        )
        return Response("", status=204)

    return routes
