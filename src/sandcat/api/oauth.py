"""``/api/v1/auth/oauth/github``: log in with GitHub."""

from __future__ import annotations

from quart import Blueprint, Response, request

from sandcat.api.payload import json_response, query_text
from sandcat.api.users import user_json
from sandcat.config import Config
from sandcat.domain.oauth import GithubLogin


def oauth_blueprint(github: GithubLogin, config: Config) -> Blueprint:
    routes = Blueprint("oauth", __name__, url_prefix="/api/v1/auth/oauth/github")

    @routes.get("")
    async def start() -> Response:
        url = await github.start(
            device=request.args.get("device"), platform=request.args.get("platform")
        )
        response = Response("", status=302)
        response.headers["Location"] = url
        response.headers["Cache-Control"] = "no-store"
        return response

    @routes.get("/callback")
    async def callback() -> Response:
        login = await github.finish(
            code=query_text("code"), state=query_text("state"), ip=request.remote_addr
        )
        response = json_response(
            {
                "access_token": login.tokens.access_token,
                "refresh_token": login.tokens.refresh_token,
                "expires_in": login.tokens.expires_in,
                "user": user_json(login.user, private=True),
                "ws_url": config.ws_url,
                "device": login.principal.device,
                "session": login.principal.session,
            }
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return routes
