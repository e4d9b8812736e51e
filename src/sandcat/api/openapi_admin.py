"""OpenAPI paths of the server admin routes (``/api/v1/admin/``; ``sandcat.api.admin``).

Every operation answers 401 without a valid token and 403 ``forbidden`` to
anyone but a server admin. Their operationIds start with ``admin``: the SDKs
leave them out (tests/client/test_http_coverage.py, sdk/ts/test).
"""

from __future__ import annotations

from collections.abc import Callable

from sandcat.api.schemas import ID, MS, Schema, obj, ref

_TEXT = {"type": "string"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_NULLABLE_MS = {"type": ["integer", "null"], "description": MS["description"]}
_IDS = {"type": "array", "items": ID}

ADMIN_SCHEMAS: dict[str, Schema] = {
    "AdminUser": obj(
        [
            "id",
            "username",
            "display_name",
            "email",
            "phone",
            "created_at",
            "last_login_at",
            "last_login_ip",
            "disabled",
            "deleted",
            "admin",
        ],
        id=ID,
        username=_TEXT,
        display_name=_TEXT,
        email=_NULLABLE_TEXT,
        phone=_NULLABLE_TEXT,
        created_at=MS,
        last_login_at=_NULLABLE_MS,
        last_login_ip=_NULLABLE_TEXT,
        disabled={"type": "boolean"},
        deleted={"type": "boolean", "description": "deleted accounts stay as tombstones"},
        admin={"type": "boolean", "description": "a server admin"},
    ),
    "AdminSession": obj(
        ["id", "device", "platform", "created_at", "last_used_at", "expires_at", "ip"],
        id=ID,
        device=ID,
        platform=_TEXT,
        created_at=MS,
        last_used_at=MS,
        expires_at=MS,
        ip=_NULLABLE_TEXT,
    ),
    "AuditEntry": obj(
        ["id", "at", "actor", "action", "target", "origin", "detail"],
        id={"type": "integer"},
        at=MS,
        actor={"type": "string", "description": "a server admin's user id, or cli:<os user>"},
        action={"type": "string", "description": "e.g. create-user, disable, delete"},
        target={"type": "string", "description": "a user or group id; * for a broadcast"},
        origin={"type": "string", "description": "the client address, or cli"},
        detail=_TEXT,
    ),
    "ServerStats": obj(
        [
            "users",
            "disabled_users",
            "deleted_users",
            "active_sessions",
            "connections",
            "connections_scope",
            "messages",
            "files",
            "file_bytes",
            "sends_per_day",
        ],
        users={"type": "integer", "description": "accounts not deleted"},
        disabled_users={"type": "integer"},
        deleted_users={"type": "integer"},
        active_sessions={"type": "integer"},
        connections={"type": ["integer", "null"], "description": "null: unknown"},
        connections_scope={
            "type": "string",
            "enum": ["cluster", "instance", "unknown"],
            "description": "whose connections are counted: cluster (every running instance's, "
            "as each reports them to Redis), instance (the answering instance's: no Redis)",
        },
        messages={"type": "integer"},
        files={"type": "integer"},
        file_bytes={"type": "integer"},
        sends_per_day={
            "type": "array",
            "items": obj(
                ["day", "messages"],
                day={"type": "string", "format": "date"},
                messages={"type": "integer"},
            ),
        },
    ),
}

_BODIES: dict[str, Schema] = {
    "createUser": obj(
        ["username", "password"],
        username=_TEXT,
        password=_TEXT,
        email=_TEXT,
        email_verified={
            "type": "boolean",
            "description": "store email as verified; otherwise it is not stored",
        },
        display_name=_TEXT,
    ),
    "setPassword": obj(["password"], password=_TEXT),
    "broadcast": obj(["text"], text=_TEXT, level={"type": "string", "enum": ["info", "warning"]}),
}

_USER = {
    "name": "user",
    "in": "path",
    "required": True,
    "schema": _TEXT,
    "description": "a user id, username, email or phone",
}


def _with(operation: Schema, *parameters: Schema, body: str | None = None) -> Schema:
    operation["parameters"] = [*operation.get("parameters", ()), *parameters]
    if body is not None:
        for code in ("400", "413", "415", "422"):
            operation["responses"][code] = {"$ref": f"#/components/responses/E{code}"}
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _BODIES[body]}},
        }
    return operation


def admin_paths(op: Callable[..., Schema], wrap: Callable[[str, Schema], Schema]) -> Schema:
    def admin(
        op_id: str, summary: str, *, errors: tuple[int, ...] = (), **kwargs: object
    ) -> Schema:
        return op(op_id, summary, errors=(403, *errors), **kwargs)

    user = wrap("user", ref("AdminUser"))
    ended = wrap("ended_sessions", _IDS)
    session = {"name": "session", "in": "path", "required": True, "schema": ID}
    return {
        "/api/v1/admin/users": {
            "get": admin(
                "adminLookupUsers",
                "accounts whose id, username, email or phone is q",
                ok=(200, wrap("users", {"type": "array", "items": ref("AdminUser")})),
                errors=(422,),
                query=({"name": "q", "in": "query", "required": True, "schema": _TEXT},),
            ),
            "post": _with(
                admin(
                    "adminCreateUser",
                    "create an account (no rate limit, no email code)",
                    ok=(201, user),
                    errors=(409,),
                ),
                body="createUser",
            ),
        },
        "/api/v1/admin/users/{user}": {
            "get": _with(
                admin("adminGetUser", "one account", ok=(200, user), errors=(404,)), _USER
            ),
            "delete": _with(
                admin(
                    "adminDeleteUser",
                    "delete an account: profile and credentials erased, messages stay",
                    ok=(200, user),
                    errors=(404, 409),
                ),
                _USER,
            ),
        },
        "/api/v1/admin/users/{user}/password": {
            "put": _with(
                admin(
                    "adminSetPassword",
                    "set the password; every session of the user ends",
                    ok=(200, ended),
                    errors=(404, 409),
                ),
                _USER,
                body="setPassword",
            )
        },
        "/api/v1/admin/users/{user}/disable": {
            "post": _with(
                admin(
                    "adminDisableUser",
                    "no login or refresh; every session ends, every socket closes with 4007",
                    ok=(200, ended),
                    errors=(404, 409),
                ),
                _USER,
            )
        },
        "/api/v1/admin/users/{user}/enable": {
            "post": _with(
                admin(
                    "adminEnableUser",
                    "undo disable",
                    ok=(200, wrap("enabled", {"type": "boolean"})),
                    errors=(404, 409),
                ),
                _USER,
            )
        },
        "/api/v1/admin/users/{user}/sessions": {
            "get": _with(
                admin(
                    "adminListSessions",
                    "the user's live sessions",
                    ok=(200, wrap("sessions", {"type": "array", "items": ref("AdminSession")})),
                    errors=(404,),
                ),
                _USER,
            ),
            "delete": _with(
                admin(
                    "adminRevokeSessions",
                    "end every session of the user (sockets close with 4007)",
                    ok=(200, ended),
                    errors=(404, 409),
                ),
                _USER,
            ),
        },
        "/api/v1/admin/users/{user}/sessions/{session}": {
            "delete": _with(
                admin(
                    "adminRevokeSession",
                    "end one session of the user (its sockets close with 4007)",
                    ok=(200, ended),
                    errors=(404, 409, 422),
                ),
                _USER,
                session,
            )
        },
        "/api/v1/admin/users/{user}/admin": {
            "delete": _with(
                admin(
                    "adminRevokeAdmin",
                    "take the server admin role away (granting it is command-line only)",
                    ok=(200, wrap("revoked", {"type": "boolean"})),
                    errors=(404,),
                ),
                _USER,
            )
        },
        "/api/v1/admin/groups/{id}/dismiss": {
            "post": admin(
                "adminDismissGroup",
                "dismiss a group as its owner would",
                ok=(204, None),
                errors=(404, 422),
                path_id="id",
            )
        },
        "/api/v1/admin/stats": {
            "get": admin(
                "adminStats",
                "users, sessions, connections (the cluster's with Redis, else this instance's), "
                "messages, files, sends per day",
                ok=(200, ref("ServerStats")),
                errors=(422,),
                query=(
                    {
                        "name": "days",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 366},
                    },
                ),
            )
        },
        "/api/v1/admin/broadcast": {
            "post": _with(
                admin(
                    "adminBroadcast",
                    "a system notice in every user's inbox",
                    ok=(200, wrap("users", {"type": "integer"})),
                ),
                body="broadcast",
            )
        },
        "/api/v1/admin/audit": {
            "get": admin(
                "adminAudit",
                "the audit log of admin actions, newest first",
                ok=(200, wrap("entries", {"type": "array", "items": ref("AuditEntry")})),
                errors=(422,),
                query=(
                    {"name": "actor", "in": "query", "schema": _TEXT},
                    {"name": "action", "in": "query", "schema": _TEXT},
                    {"name": "since", "in": "query", "schema": MS},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ),
            )
        },
    }
