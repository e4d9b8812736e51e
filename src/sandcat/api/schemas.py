"""JSON Schemas of the API's objects and request bodies (for the OpenAPI document)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
MS = {"type": "integer", "description": "milliseconds since the Unix epoch, UTC"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def text(low: int, high: int, **extra: Any) -> Schema:
    return {"type": "string", "minLength": low, "maxLength": high, **extra}


SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ["error"],
        error=obj(
            ["code", "message"],
            code={
                "type": "string",
                "enum": [
                    "bad_request",
                    "unauthorized",
                    "forbidden",
                    "not_found",
                    "conflict",
                    "too_large",
                    "rate_limited",
                    "unavailable",
                    "internal",
                ],
            },
            message={"type": "string"},
            field={"type": "string", "description": "the request field at fault"},
            retry_after_ms={"type": "integer"},
        ),
    ),
    "User": obj(
        ["id", "username", "display_name", "avatar", "created_at"],
        id=ID,
        username={"type": "string"},
        display_name={"type": "string"},
        avatar={"type": "string"},
        created_at=MS,
        email={"type": ["string", "null"], "description": "only in your own user"},
        phone={"type": ["string", "null"], "description": "only in your own user"},
    ),
    "Tokens": obj(
        ["access_token", "refresh_token", "expires_in"],
        access_token={"type": "string", "description": "JWT (HS256), at most 15 minutes"},
        refresh_token={"type": "string", "description": "single use; rotated by /auth/refresh"},
        expires_in={"type": "integer", "description": "seconds until the access token expires"},
    ),
    "LoginResult": {
        "allOf": [
            ref("Tokens"),
            obj(
                ["user", "ws_url", "device", "session"],
                user=ref("User"),
                ws_url={"type": "string"},
                device=ID,
                session=ID,
            ),
        ]
    },
    "FriendRequest": obj(
        ["id", "from", "to", "message", "remark", "status", "created_at", "updated_at"],
        id=ID,
        **{"from": ID},
        to=ID,
        message={"type": "string"},
        remark={"type": "string"},
        status={"type": "string", "enum": ["pending", "accepted", "rejected", "cancelled"]},
        created_at=MS,
        updated_at=MS,
    ),
    "Friend": obj(
        ["id", "username", "display_name", "avatar", "remark", "since", "cid"],
        id=ID,
        username={"type": "string"},
        display_name={"type": "string"},
        avatar={"type": "string"},
        remark={"type": "string"},
        since=MS,
        cid={"type": "string", "description": "the direct conversation d:<a>:<b>"},
    ),
    "Group": obj(
        ["id", "cid", "name", "owner", "avatar", "max_members", "created_at"],
        id=ID,
        cid={"type": "string", "description": "the group conversation g:<id>"},
        name={"type": "string"},
        owner=ID,
        avatar={"type": "string"},
        description={"type": "string"},
        announcement={"type": "string"},
        max_members={"type": "integer"},
        created_at=MS,
    ),
    "GroupMember": obj(
        ["user", "role", "alias", "joined_at"],
        user=ID,
        role={"type": "string", "enum": ["owner", "admin", "member"]},
        alias={"type": "string"},
        joined_at=MS,
    ),
    "GroupDetail": {
        "allOf": [
            ref("Group"),
            obj(["members"], members={"type": "array", "items": ref("GroupMember")}),
        ]
    },
}

BODIES: dict[str, Schema] = {
    "register": obj(
        ["username", "password"],
        username=text(3, 32, pattern="^[a-z0-9_.]{3,32}$"),
        password=text(8, 128),
        email={"type": "string", "format": "email"},
        display_name=text(1, 64),
        code={"type": "string", "description": "required when email verification is on"},
    ),
    "login": obj(
        ["login", "password"],
        login={"type": "string", "description": "username, email or phone"},
        password={"type": "string"},
        device={**ID, "description": "default: a fresh device id"},
        platform={"type": "string", "description": "desktop, mobile, web ...; default unknown"},
    ),
    "refresh": obj(["refresh_token"], refresh_token={"type": "string"}),
    "friend_request": obj(["to"], to=ID, message=text(0, 256), remark=text(0, 64)),
    "accept": obj([], remark=text(0, 64)),
    "direct_upload": obj(
        ["content_type", "size"],
        kind={"type": "string", "enum": ["image", "file", "voice", "video"]},
        content_type={"type": "string"},
        size={"type": "integer", "minimum": 0},
        name={"type": "string"},
    ),
    "group": obj(
        ["name", "members"],
        name=text(1, 64),
        members={"type": "array", "items": ID, "description": "friends of the creator"},
    ),
}
