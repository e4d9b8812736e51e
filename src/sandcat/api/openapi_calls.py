"""OpenAPI paths of the calls routes."""

from __future__ import annotations

from collections.abc import Callable

from sandcat.api.schemas import Schema, obj

TURN_CREDENTIALS = obj(
    ["username", "credential", "ttl", "uris"],
    username={"type": "string", "description": '"<expiry unix seconds>:<user id>"'},
    credential={"type": "string", "description": "base64(HMAC-SHA1(turn secret, username))"},
    ttl={"type": "integer", "description": "seconds the credentials stay valid"},
    uris={"type": "array", "items": {"type": "string"}, "description": "turn:/turns:/stun: URIs"},
)


def call_paths(op: Callable[..., Schema]) -> Schema:
    return {
        "/api/v1/calls/turn": {
            "get": op(
                "turnCredentials",
                "time-limited TURN credentials (coturn REST API format); 404 when the "
                "server has no TURN secret configured",
                ok=(200, TURN_CREDENTIALS),
                errors=(404,),
            )
        }
    }
