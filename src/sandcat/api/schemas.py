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


#: A name shown to others (display name, group name, alias).
NAME_NOTE = "no control, bidi (U+202A-202E, U+2066-2069, marks) or zero-width characters"
#: An avatar reference (users and groups).
AVATAR = text(0, 512, description="an uploaded file id, an https:// URL (no credentials), or empty")


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
            reason={
                "type": "string",
                "description": "a stable word telling apart refusals with the same code: "
                "banned, invite_revoked, invite_expired, invite_used_up",
            },
            retry_after_ms={"type": "integer"},
        ),
    ),
    "User": obj(
        ["id", "username", "display_name", "avatar", "created_at"],
        id=ID,
        username={"type": "string"},
        display_name={"type": "string"},
        avatar={"type": "string"},
        gender={"type": "string", "enum": ["", "female", "male", "other"]},
        signature={"type": "string"},
        region={"type": "string"},
        language={"type": "string"},
        created_at=MS,
        email={"type": ["string", "null"], "description": "only in your own user"},
        phone={"type": ["string", "null"], "description": "only in your own user"},
        birthday={"type": ["string", "null"], "description": "YYYY-MM-DD; only in your own"},
        find_by_email={"type": "boolean", "description": "only in your own user"},
        find_by_phone={"type": "boolean", "description": "only in your own user"},
        read_receipts={
            "type": "boolean",
            "description": "only in your own user; direct read receipts, both ways",
        },
        last_login_at={"type": ["integer", "null"], "description": "only in your own user"},
        last_login_ip={"type": ["string", "null"], "description": "only in your own user"},
        last_login_device={"type": ["string", "null"], "description": "only in your own user"},
        match={
            "type": "string",
            "enum": ["username", "email", "phone", "prefix"],
            "description": "in search results: what matched",
        },
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
        deleted={"type": "boolean", "description": "in sync answers: the friendship ended"},
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
        join_approval={"type": "boolean", "description": "joins need an owner's or admin's yes"},
        invite_policy={"type": "string", "enum": ["members", "admins"]},
        history_visible={"type": "boolean", "description": "new members see older messages"},
        mute_all={"type": "boolean", "description": "only the owner and admins may post"},
        created_at=MS,
    ),
    "GroupMember": obj(
        ["user", "role", "alias", "joined_at"],
        user=ID,
        role={"type": "string", "enum": ["owner", "admin", "member"]},
        alias={"type": "string"},
        joined_at=MS,
        joined_seq={"type": "integer", "description": "seq of the join's system message"},
        muted_until={**MS, "description": "muted until then (0: not muted)"},
    ),
    "GroupDetail": {
        "allOf": [
            ref("Group"),
            obj(["members"], members={"type": "array", "items": ref("GroupMember")}),
        ]
    },
}

SCHEMAS.update(
    {
        "Session": obj(
            ["id", "device", "platform", "created_at", "last_used_at", "expires_at", "current"],
            id=ID,
            device={"type": "string"},
            platform={"type": "string"},
            created_at=MS,
            last_used_at=MS,
            expires_at=MS,
            ip={"type": ["string", "null"]},
            current={"type": "boolean", "description": "the session of this request"},
        ),
        "Blocked": obj(
            ["id", "username", "display_name", "avatar", "since"],
            id=ID,
            username={"type": "string"},
            display_name={"type": "string"},
            avatar={"type": "string"},
            since=MS,
        ),
        "Notice": obj(
            ["nseq", "type", "data", "ts"],
            nseq={"type": "integer", "minimum": 1},
            type={"type": "string", "pattern": "^[a-z0-9_.]{1,64}$"},
            data={"type": "object"},
            ts=MS,
        ),
    }
)

_PASSWORD = text(8, 128, description="8-128 characters, not a common password")
_PHONE = {"type": "string", "description": "international format, e.g. +15551234567"}

BODIES: dict[str, Schema] = {
    "hide_messages": obj(
        ["seqs"],
        seqs={
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 2**53 - 1},
            "minItems": 1,
            "maxItems": 200,
        },
    ),
    "register": obj(
        ["username", "password"],
        username=text(
            3, 32, pattern="^[A-Za-z0-9_.]{3,32}$", description="case-insensitive; stored lower"
        ),
        password=_PASSWORD,
        email={"type": "string", "format": "email"},
        phone=_PHONE,
        display_name=text(1, 64, description=NAME_NOTE),
        code={
            "type": "string",
            "pattern": "^[0-9]{6}$",
            "description": "from POST /auth/codes; required when email verification is on",
        },
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
        name=text(1, 64, description=NAME_NOTE),
        members={"type": "array", "items": ID, "description": "friends of the creator"},
    ),
    "code_request": obj(
        ["email", "purpose"],
        email={"type": "string", "format": "email"},
        purpose={"type": "string", "enum": ["register", "reset"]},
    ),
    "password_reset": obj(
        ["email", "code", "new_password"],
        email={"type": "string", "format": "email"},
        code={"type": "string", "pattern": "^[0-9]{6}$"},
        new_password=_PASSWORD,
    ),
    "password_change": obj(
        ["current_password", "new_password"],
        current_password={"type": "string"},
        new_password=_PASSWORD,
    ),
    "disable": obj(["password"], password={"type": "string"}),
    "profile": {
        **obj(
            [],
            display_name=text(1, 64, description=NAME_NOTE),
            avatar=AVATAR,
            gender={"type": "string", "enum": ["", "female", "male", "other"]},
            birthday={"type": ["string", "null"], "format": "date"},
            signature=text(0, 256),
            region=text(0, 64),
            language={"type": "string", "description": "a language tag like en or pt-BR"},
            phone={**_PHONE, "type": ["string", "null"]},
            email={"type": "string", "format": "email"},
            email_code={"type": "string", "pattern": "^[0-9]{6}$"},
            phone_code={"type": "string", "pattern": "^[0-9]{6}$"},
            find_by_email={"type": "boolean"},
            find_by_phone={"type": "boolean"},
            read_receipts={"type": "boolean"},
        ),
        "additionalProperties": False,
    },
    "remark": obj(["remark"], remark=text(0, 64)),
    "inbox_ack": obj(["upto"], upto={"type": "integer", "minimum": 0, "maximum": 2**53 - 1}),
}
