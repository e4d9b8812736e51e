"""``GET /api/v1/users/me/export``: the signed-in user's data as a streamed zip
(``sandcat.export``; the format is docs/export.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.domain.accounts import Accounts

if TYPE_CHECKING:
    # sandcat.export renders with the api's JSON helpers: a runtime import would be a cycle.
    from sandcat.export import Exports


def export_blueprint(accounts: Accounts, exports: Exports, *, timeout_s: float) -> Blueprint:
    """``timeout_s``: how long the whole answer may take to send (``files.transfer_timeout_s``)."""
    routes = Blueprint("export", __name__, url_prefix="/api/v1/users")

    @routes.get("/me/export")
    async def export() -> Response:
        principal = await authenticated(accounts)
        pieces = await exports.start(principal.user)
        day = time.strftime("%Y%m%d", time.gmtime())
        response = Response(
            pieces,
            status=200,
            content_type="application/zip",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="sandcat-export-{principal.user}-{day}.zip"'
                ),
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
        response.timeout = timeout_s
        return response

    return routes
