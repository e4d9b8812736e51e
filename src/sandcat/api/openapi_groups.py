"""The group management part of the OpenAPI document (``/api/v1/groups/{id}/...``)."""

from __future__ import annotations

from collections.abc import Callable

from sandcat.api.schemas import AVATAR, ID, MS, NAME_NOTE, Schema, obj, ref, text

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
    "GroupBan": obj(
        ["user", "by", "created_at"],
        user=ID,
        by={**ID, "description": "who banned them"},
        created_at=MS,
    ),
    "GroupInvite": obj(
        [
            "id",
            "group",
            "token",
            "created_by",
            "created_at",
            "expires_at",
            "max_uses",
            "uses",
            "revoked_at",
        ],
        id=ID,
        group=ID,
        token={**ID, "description": "the secret a joiner presents (requestToJoinGroup)"},
        created_by=ID,
        created_at=MS,
        expires_at={"type": ["integer", "null"], "description": "ms; null: never expires"},
        max_uses={"type": ["integer", "null"], "description": "null: no limit"},
        uses={"type": "integer", "description": "joins and join requests made with it"},
        revoked_at={"type": ["integer", "null"], "description": "ms; null: not revoked"},
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
        name=text(1, 64, description=NAME_NOTE),
        avatar=AVATAR,
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
    "remove": obj(
        ["users"],
        users=_USERS,
        ban={"type": "boolean", "description": "ban them too (members.banned); default false"},
    ),
    "invite": obj(
        [],
        expires_at={**MS, "description": "when the link stops working (ms, in the future)"},
        max_uses={"type": "integer", "minimum": 1, "maximum": 100_000},
    ),
    "revoke": obj(["invite"], invite={**ID, "description": "the link's id"}),
    "to": obj(["to"], to=ID),
    "role": obj(["user", "role"], user=ID, role={"type": "string", "enum": ["admin", "member"]}),
    "mute": obj(
        ["user", "until"],
        user=ID,
        until={**MS, "minimum": 0, "description": "muted until then; 0 (or a past time) unmutes"},
    ),
    "alias": obj(["alias"], alias=text(0, 64, description=NAME_NOTE)),
    "join": obj(
        ["token"],
        token={**ID, "description": "an invite link's token (createGroupInvite)"},
        message=text(0, 256),
    ),
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
    invite = wrap("invite", ref("GroupInvite"))
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
                    "change name, avatar, description or announcement (owner or admin); one "
                    "group.updated message lists the fields that differ (none: no message)",
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
                    "remove members (owner: anyone else; admin: plain members only); "
                    "with ban, ban them too",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "remove",
            )
        },
        "/api/v1/groups/{id}/bans": {
            "post": _with_body(
                op(
                    "banGroupUsers",
                    "ban users (owner or admins; members among them are removed, over the "
                    "ranks removal allows); banned users cannot join or be invited",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "users",
            ),
            "get": op(
                "listGroupBans",
                "banned users, newest first (owner or admins)",
                ok=(
                    200,
                    obj(
                        ["bans", "total", "more"],
                        bans={"type": "array", "items": ref("GroupBan")},
                        total={"type": "integer"},
                        more={"type": "boolean"},
                    ),
                ),
                errors=(403, 404, 422),
                path_id="id",
                query=(page("offset", "bans to skip"), page("limit", "1-200, default 50")),
            ),
        },
        "/api/v1/groups/{id}/bans/remove": {
            "post": _with_body(
                op(
                    "unbanGroupUsers",
                    "lift bans (owner or admins)",
                    ok=(200, change),
                    errors=found,
                    path_id="id",
                ),
                "users",
            )
        },
        "/api/v1/groups/{id}/invites": {
            "post": _with_body(
                op(
                    "createGroupInvite",
                    "make an invite link (who may: invite_policy); not a timeline event",
                    ok=(201, invite),
                    errors=found,
                    path_id="id",
                ),
                "invite",
                required=False,
            ),
            "get": op(
                "listGroupInvites",
                "the links that still work, newest first (owner and admins: all; "
                "a plain member: their own)",
                ok=(200, wrap("invites", {"type": "array", "items": ref("GroupInvite")})),
                errors=(404, 422),
                path_id="id",
            ),
        },
        "/api/v1/groups/{id}/invites/revoke": {
            "post": _with_body(
                op(
                    "revokeGroupInvite",
                    "end an invite link (its creator, the owner or an admin)",
                    ok=(200, invite),
                    errors=found,
                    path_id="id",
                ),
                "revoke",
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
                    "join with an invite link's token: approved at once, or a pending request "
                    "under join_approval; 404 for a token that is not the group's, 403 (reason) "
                    "for a revoked, expired or used-up link or a banned user",
                    ok=(201, request),
                    errors=found,
                    path_id="id",
                ),
                "join",
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
