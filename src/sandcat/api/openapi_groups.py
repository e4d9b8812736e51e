"""The group management part of the OpenAPI document (``/api/v1/groups/{id}/...``)."""

from __future__ import annotations

from collections.abc import Callable

from sandcat.api.schemas import ID, MS, Schema, obj, ref, text

GROUP_SCHEMAS: dict[str, Schema] = {
    "JoinRequest": obj(
        ["id", "group", "user", "invited_by", "message", "status", "created_at"],
        id=ID,
        group=ID,
        user=ID,
        invited_by={**ID, "type": ["string", "null"], "description": "null: asked to join"},
        message={"type": "string"},
        status={"type": "string", "enum": ["pending", "approved", "rejected"]},
        created_at=MS,
    ),
    "GroupChange": obj(
        ["seq"],
        seq={
            "type": ["integer", "null"],
            "description": "seq of the system message the change wrote in the group's timeline",
        },
    ),
}

_USERS = {"type": "array", "items": ID, "minItems": 1, "maxItems": 100}
_BODIES: dict[str, Schema] = {
    "info": obj(
        [],
        name=text(1, 64),
        avatar=text(0, 512),
        description=text(0, 1024),
        announcement=text(0, 4096),
    ),
    "settings": obj(
        [],
        join_approval={"type": "boolean"},
        invite_policy={"type": "string", "enum": ["members", "admins"]},
        history_visible={"type": "boolean"},
        mute_all={"type": "boolean"},
        max_members={
            "type": "integer",
            "minimum": 2,
            "description": "up to chat.max_group_members",
        },
    ),
    "users": obj(["users"], users=_USERS),
    "to": obj(["to"], to=ID),
    "role": obj(["user", "role"], user=ID, role={"type": "string", "enum": ["admin", "member"]}),
    "mute": obj(
        ["user", "until"],
        user=ID,
        until={**MS, "minimum": 0, "description": "muted until then; 0 (or a past time) unmutes"},
    ),
    "alias": obj(["alias"], alias=text(0, 64)),
    "join": obj([], message=text(0, 256)),
}


def _with_body(operation: Schema, name: str, *, required: bool = True) -> Schema:
    operation["requestBody"] = {
        "required": required,
        "content": {"application/json": {"schema": _BODIES[name]}},
    }
    for code in (400, 413, 415, 422):
        operation["responses"][str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return operation


def group_paths(op: Callable[..., Schema], wrap: Callable[[str, Schema], Schema]) -> Schema:
    group = wrap("group", ref("Group"))
    change = ref("GroupChange")
    request = wrap("request", ref("JoinRequest"))
    found = (403, 404, 409)

    def page(name: str, description: str) -> Schema:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": description,
        }

    return {
        "/api/v1/groups/{id}": {
            "patch": _with_body(
                op(
                    "updateGroup",
                    "change name, avatar, description or announcement (owner or admin)",
                    ok=(200, group),
                    errors=found,
                    path_id="id",
                ),
                "info",
            ),
            "delete": op(
                "dismissGroup",
                "dismiss the group (owner): no more sends, gone from group lists; "
                "its conversation stays readable up to the dismissal",
                ok=(200, change),
                errors=found,
                path_id="id",
            ),
        },
        "/api/v1/groups/{id}/settings": {
            "patch": _with_body(
                op(
                    "configureGroup",
                    "change settings (owner or admin; max_members only the owner)",
                    ok=(200, group),
                    errors=found,
                    path_id="id",
                ),
                "settings",
            )
        },
        "/api/v1/groups/{id}/members": {
            "get": op(
                "listGroupMembers",
                "a page of members, owner and admins first, then by join time; or the named ones",
                ok=(
                    200,
                    obj(
                        ["members", "total", "more"],
                        members={"type": "array", "items": ref("GroupMember")},
                        total={"type": "integer"},
                        more={"type": "boolean"},
                    ),
                ),
                errors=(404, 422),
                path_id="id",
                query=(
                    page("offset", "members to skip"),
                    page("limit", "1-200, default 50"),
                    {
                        "name": "users",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "comma-separated user ids (up to 100): only those members",
                    },
                ),
            ),
            "post": _with_body(
                op(
                    "inviteGroupMembers",
                    "add friends of yours (who may invite is a setting); under join approval "
                    "a plain member's invitations become join requests",
                    ok=(
                        200,
                        obj(
                            ["seq", "added", "requested"],
                            seq={"type": ["integer", "null"]},
                            added={"type": "array", "items": ID},
                            requested={"type": "array", "items": ID},
                        ),
                    ),
                    errors=found,
                    path_id="id",
                ),
                "users",
            ),
        },
        "/api/v1/groups/{id}/members/remove": {
            "post": _with_body(
                op(
                    "removeGroupMembers",
                    "remove members (owner: anyone else; admin: plain members only)",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "users",
            )
        },
        "/api/v1/groups/{id}/leave": {
            "post": op(
                "leaveGroup",
                "leave the group (the owner transfers or dismisses instead)",
                ok=(200, change),
                errors=(404, 409),
                path_id="id",
            )
        },
        "/api/v1/groups/{id}/transfer": {
            "post": _with_body(
                op(
                    "transferGroup",
                    "make a member the owner (owner); you become a plain member",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "to",
            )
        },
        "/api/v1/groups/{id}/roles": {
            "post": _with_body(
                op(
                    "setGroupRole",
                    "make a member an admin or a plain member again (owner)",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "role",
            )
        },
        "/api/v1/groups/{id}/mutes": {
            "post": _with_body(
                op(
                    "muteGroupMember",
                    "mute a member until a time, or unmute (owner or admin, over lower roles)",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "mute",
            )
        },
        "/api/v1/groups/{id}/alias": {
            "put": _with_body(
                op(
                    "setGroupAlias",
                    "your own alias in the group",
                    ok=(200, change),
                    errors=(404,),
                    path_id="id",
                ),
                "alias",
            )
        },
        "/api/v1/groups/{id}/requests": {
            "post": _with_body(
                op(
                    "requestToJoinGroup",
                    "ask to join (anyone with the group's id); approved at once when the group "
                    "needs no approval",
                    ok=(201, request),
                    errors=(404, 409),
                    path_id="id",
                ),
                "join",
                required=False,
            ),
            "get": op(
                "listJoinRequests",
                "pending join requests (owner or admin)",
                ok=(200, wrap("requests", {"type": "array", "items": ref("JoinRequest")})),
                errors=(403, 404, 422),
                path_id="id",
            ),
        },
        "/api/v1/groups/requests/{id}/approve": {
            "post": op(
                "approveJoinRequest",
                "approve a pending join request (owner or admin of its group)",
                ok=(200, request),
                errors=found,
                path_id="id",
            )
        },
        "/api/v1/groups/requests/{id}/reject": {
            "post": op(
                "rejectJoinRequest",
                "reject a pending join request (owner or admin of its group)",
                ok=(200, request),
                errors=found,
                path_id="id",
            )
        },
    }
