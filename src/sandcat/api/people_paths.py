"""OpenAPI paths of accounts, sessions, profiles, contacts, blocks and the inbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandcat.api.schemas import Schema, obj, ref

_MAX = 2**53 - 1


def _array(name: str) -> Schema:
    return {"type": "array", "items": ref(name)}


def _query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def people_paths(op: Callable[..., Schema], wrap: Callable[[str, Schema], Schema]) -> Schema:
    user = wrap("user", ref("User"))
    pending = {
        "type": "array",
        "items": {"type": "string", "enum": ["email", "phone"]},
        "description": "new email / phone waiting for the code sent to them",
    }
    user_pending = obj(["user", "pending"], user=ref("User"), pending=pending)
    request = wrap("request", ref("FriendRequest"))
    limit: Any = {"type": "integer", "minimum": 1, "maximum": 200}
    return {
        "/api/v1/auth/register": {
            "post": op(
                "register",
                "create an account (with an emailed code when verification is on); a "
                "phone, and an email while verification is off, are added later with "
                "the code sent to them (PATCH /users/me): the answer is the same "
                "whether or not they are taken",
                ok=(201, user_pending),
                body="register",
                errors=(409, 429),
                auth=False,
            )
        },
        "/api/v1/auth/codes": {
            "post": op(
                "requestCode",
                "email a 6-digit code (register or reset); the same answer whether "
                "or not the address is registered",
                ok=(202, obj(["status"], status={"type": "string"})),
                body="code_request",
                errors=(429,),
                auth=False,
            )
        },
        "/api/v1/auth/login": {
            "post": op(
                "login",
                "open a session; unknown login and wrong password give the same 401; "
                "repeated failures lock the account (under any of its logins) or the "
                "address: 429 with Retry-After",
                ok=(200, ref("LoginResult")),
                body="login",
                errors=(401, 403, 429),
                auth=False,
            )
        },
        "/api/v1/auth/refresh": {
            "post": op(
                "refresh",
                "rotate tokens; reusing a rotated refresh token ends the session",
                ok=(200, ref("Tokens")),
                body="refresh",
                errors=(401,),
                auth=False,
            )
        },
        "/api/v1/auth/logout": {
            "post": op("logout", "end this session and close its sockets", ok=(204, None))
        },
        "/api/v1/auth/logout_all": {
            "post": op(
                "logoutEverywhere", "end every session of yours, this one too", ok=(204, None)
            )
        },
        "/api/v1/auth/oauth/github": {
            "get": op(
                "githubLogin",
                "start logging in with GitHub: redirects (302) to GitHub's authorisation page",
                ok=(302, None),
                errors=(404, 422),
                auth=False,
                query=(
                    _query("device", {"type": "string"}, "the device id for the session"),
                    _query("platform", {"type": "string"}, "desktop, mobile, web ..."),
                ),
            )
        },
        "/api/v1/auth/oauth/github/callback": {
            "get": op(
                "githubCallback",
                "where GitHub sends the user back: checks the single-use state, then "
                "logs in the linked account, the one with that verified email, or a new one",
                ok=(200, ref("LoginResult")),
                errors=(401, 403, 404, 422),
                auth=False,
                query=(
                    _query("code", {"type": "string"}, "from GitHub", required=True),
                    _query("state", {"type": "string"}, "from GitHub", required=True),
                ),
            )
        },
        "/api/v1/auth/password/reset": {
            "post": op(
                "resetPassword",
                "set a new password with an emailed code; ends every session",
                ok=(204, None),
                body="password_reset",
                auth=False,
            )
        },
        "/api/v1/sessions": {
            "get": op(
                "listSessions",
                "your logged-in devices",
                ok=(200, wrap("sessions", _array("Session"))),
            )
        },
        "/api/v1/sessions/{id}": {
            "delete": op(
                "revokeSession",
                "end one of your sessions and close its sockets",
                ok=(204, None),
                errors=(404, 422),
                path_id="id",
            )
        },
        "/api/v1/users/me": {
            "get": op("me", "your own user", ok=(200, user)),
            "patch": op(
                "updateMe",
                "change your profile; only the fields sent. A new email or phone gets "
                "a code and changes with email_code / phone_code (409 if taken, only "
                "then); phone null removes the number",
                ok=(200, user_pending),
                body="profile",
                errors=(409, 429),
            ),
        },
        "/api/v1/users/me/password": {
            "post": op(
                "changePassword",
                "change your password; ends every other session",
                ok=(204, None),
                body="password_change",
                errors=(403, 429),
            )
        },
        "/api/v1/users/me/disable": {
            "post": op(
                "disableMe",
                "disable your account; ends every session and hides your profile",
                ok=(204, None),
                body="disable",
                errors=(403, 429),
            )
        },
        "/api/v1/users/search": {
            "get": op(
                "searchUsers",
                "exact username, email or phone, then username / display-name prefix",
                ok=(
                    200,
                    obj(
                        ["users", "next_offset"],
                        users=_array("User"),
                        next_offset={"type": ["integer", "null"]},
                    ),
                ),
                errors=(422,),
                query=(
                    _query("q", {"type": "string", "minLength": 1}, "what to find", required=True),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "page size"),
                    _query("offset", {"type": "integer", "minimum": 0, "maximum": 1000}, "skip"),
                ),
            )
        },
        "/api/v1/users/{id}": {
            "get": op(
                "getUser",
                "a public profile (404 if disabled or blocking you)",
                ok=(200, user),
                errors=(404, 422),
                path_id="id",
            )
        },
        "/api/v1/friends": {
            "get": op("listFriends", "your friends", ok=(200, wrap("friends", _array("Friend"))))
        },
        "/api/v1/friends/sync": {
            "get": op(
                "syncContacts",
                "friends (deletions included) and requests changed after a version",
                ok=(
                    200,
                    obj(
                        ["friends", "requests", "version"],
                        friends=_array("Friend"),
                        requests=_array("FriendRequest"),
                        version={"type": "integer"},
                    ),
                ),
                errors=(422,),
                query=(
                    _query(
                        "since",
                        {"type": "integer", "minimum": 0, "maximum": _MAX},
                        "the version of an earlier answer; 0 or absent: everything",
                    ),
                ),
            )
        },
        "/api/v1/friends/{id}": {
            "patch": op(
                "setRemark",
                "what you call this friend",
                ok=(200, wrap("friend", ref("Friend"))),
                body="remark",
                errors=(404,),
                path_id="id",
            ),
            "delete": op(
                "deleteFriend",
                "end the friendship on both sides; the conversation stays readable",
                ok=(204, None),
                errors=(404, 422),
                path_id="id",
            ),
        },
        "/api/v1/friends/requests": {
            "post": op(
                "sendFriendRequest",
                "ask a user to be your friend",
                ok=(201, request),
                body="friend_request",
                errors=(404, 409, 429),
            ),
            "get": op(
                "listFriendRequests",
                "pending requests to and from you",
                ok=(
                    200,
                    obj(
                        ["incoming", "outgoing"],
                        incoming=_array("FriendRequest"),
                        outgoing=_array("FriendRequest"),
                    ),
                ),
            ),
        },
        "/api/v1/friends/requests/{id}/accept": {
            "post": op(
                "acceptFriendRequest",
                "accept a request addressed to you; opens the direct conversation",
                ok=(200, wrap("friend", ref("Friend"))),
                body="accept",
                body_required=False,
                errors=(404,),
                path_id="id",
            )
        },
        "/api/v1/friends/requests/{id}/reject": {
            "post": op(
                "rejectFriendRequest",
                "reject a request addressed to you",
                ok=(200, request),
                errors=(404, 422),
                path_id="id",
            )
        },
        "/api/v1/friends/requests/{id}/cancel": {
            "post": op(
                "cancelFriendRequest",
                "withdraw a request you sent",
                ok=(200, request),
                errors=(404, 422),
                path_id="id",
            )
        },
        "/api/v1/blocks": {
            "get": op("listBlocks", "users you block", ok=(200, wrap("blocks", _array("Blocked"))))
        },
        "/api/v1/blocks/{id}": {
            "put": op(
                "block",
                "stop a user from requesting, messaging or finding you",
                ok=(204, None),
                errors=(404, 422),
                path_id="id",
            ),
            "delete": op("unblock", "undo a block", ok=(204, None), errors=(422,), path_id="id"),
        },
        "/api/v1/inbox": {
            "get": op(
                "pullInbox",
                "your notices after a nseq (default: after this device's ack)",
                ok=(
                    200,
                    obj(
                        ["notices", "more", "max_nseq"],
                        notices=_array("Notice"),
                        more={"type": "boolean"},
                        max_nseq={"type": "integer"},
                    ),
                ),
                errors=(422,),
                query=(
                    _query("after", {"type": "integer", "minimum": 0, "maximum": _MAX}, "an nseq"),
                    _query("limit", limit, "page size, default 50"),
                ),
            )
        },
        "/api/v1/inbox/ack": {
            "post": op(
                "ackInbox",
                "this device handled every notice up to upto",
                ok=(200, obj(["acked"], acked={"type": "integer"})),
                body="inbox_ack",
            )
        },
    }
