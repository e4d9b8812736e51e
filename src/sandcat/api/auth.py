"""``/api/v1/auth``: register, login, refresh and logout."""

from __future__ import annotations

from quart import Blueprint, Response, request

from sandcat.api.bearer import SESSION_ENDED, SessionCloser, authenticated
from sandcat.api.payload import json_response, read_body
from sandcat.api.users import user_json
from sandcat.config import Config
from sandcat.domain.accounts import Accounts, TokenPair, TokenReused
from sandcat.domain.codes import VerificationCodes


def _tokens_json(pair: TokenPair) -> dict[str, object]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": pair.expires_in,
    }


def auth_blueprint(
    accounts: Accounts, codes: VerificationCodes, sessions: SessionCloser, config: Config
) -> Blueprint:
    routes = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
    max_bytes = config.http.max_body_bytes

    @routes.after_request
    async def never_cached(response: Response) -> Response:
        # Tokens and private account data: no browser or proxy may keep a copy.
        response.headers["Cache-Control"] = "no-store"
        return response

    @routes.post("/register")
    async def register() -> Response:
        body = await read_body(max_bytes=max_bytes)
        user = await accounts.register(
            username=body.text("username"),
            password=body.text("password"),
            email=body.optional_text("email"),
            phone=body.optional_text("phone"),
            display_name=body.optional_text("display_name"),
            code=body.optional_text("code"),
            ip=request.remote_addr,
        )
        # A phone (and an email while verification is off) waits for its code.
        asked = {"email": body.optional_text("email"), "phone": body.optional_text("phone")}
        pending = [kind for kind, value in asked.items() if value and getattr(user, kind) is None]
        return json_response({"user": user_json(user, private=True), "pending": pending}, 201)

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

    @routes.post("/logout_all")
    async def logout_all() -> Response:
        principal = await authenticated(accounts)
        await accounts.logout_everywhere(principal)
        sessions.end_sessions(principal.user, code=SESSION_ENDED, reason="logged out everywhere")
        return Response("", status=204)

    @routes.post("/codes")
    async def request_code() -> Response:
        body = await read_body(max_bytes=max_bytes)
        await codes.request(body.text("email"), body.text("purpose"), ip=request.remote_addr)
        # The same answer whether or not a mail goes out (no account oracle).
        return json_response({"status": "accepted"}, 202)

    @routes.post("/password/reset")
    async def reset_password() -> Response:
        body = await read_body(max_bytes=max_bytes)
        user, _ = await accounts.reset_password(
            email=body.text("email"),
            code=body.text("code"),
            new=body.text("new_password"),
        )
        sessions.end_sessions(user, code=SESSION_ENDED, reason="password reset")
        return Response("", status=204)

    return routes
