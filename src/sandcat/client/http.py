"""The JSON HTTP API (SPEC.md §13) over ``httpx.AsyncClient``: every route.

`HttpApi` has one method per route of the OpenAPI document
(``GET /api/v1/openapi.json``); `OPERATIONS` maps each ``operationId`` to its
method, and a test fails when a route has no entry. Results are typed
(`User`, `Group`, `FileInfo`, `Msg`, ...). Authenticated calls take the
access token to present as their first argument. Every call has a deadline
(``timeout_s``); an error answer raises `HttpError` with the wire code.
"""

from __future__ import annotations

from collections.abc import Mapping

from .http_contacts import ContactRoutes
from .http_conversations import ConversationRoutes
from .http_files import FileRoutes
from .http_groups import GroupRoutes
from .http_people import Login, PeopleRoutes, Tokens
from .http_transport import JSON

__all__ = ["ALSO_CALLS", "JSON", "OPERATIONS", "HttpApi", "Login", "Tokens"]


class HttpApi(PeopleRoutes, ContactRoutes, GroupRoutes, FileRoutes, ConversationRoutes):
    """A client of one Sandcat server's HTTP API.

    Args:
        base_url: the HTTP origin, e.g. ``http://127.0.0.1:50001``.
        timeout_s: deadline for each request.
        transport: an ``httpx`` transport to use instead of the network.
        tls: the TLS context for ``https://`` (default: the system's trusted
            certificates).

    Use it as an async context manager, or call `aclose` when done.
    """

    async def health(self) -> str:
        """``ok`` once the server is ready (`HttpError` 503 while it starts or drains)."""
        return str((await self._send("GET", "/healthz")).json()["status"])

    async def metrics(self) -> str:
        """The server's metrics in the Prometheus text format."""
        return (await self._send("GET", "/metrics")).text

    async def openapi(self) -> JSON:
        """The OpenAPI 3.1 document of the server's HTTP API."""
        return await self._request("GET", "/openapi.json")


#: operationId (OpenAPI document) -> the `HttpApi` method that calls it.
OPERATIONS: Mapping[str, str] = {
    # accounts and sessions
    "register": "register",
    "requestCode": "request_code",
    "login": "login",
    "refresh": "refresh",
    "logout": "logout",
    "logoutEverywhere": "logout_everywhere",
    "resetPassword": "reset_password",
    "githubLogin": "github_login_url",
    "githubCallback": "github_callback",
    "listSessions": "sessions",
    "revokeSession": "revoke_session",
    # users
    "me": "me",
    "updateMe": "update_me",
    "changePassword": "change_password",
    "disableMe": "disable_me",
    "exportMe": "export",
    "getUser": "user",
    "searchUsers": "search_users",
    # contacts
    "sendFriendRequest": "request_friend",
    "listFriendRequests": "friend_requests",
    "acceptFriendRequest": "accept_friend",
    "rejectFriendRequest": "reject_friend",
    "cancelFriendRequest": "cancel_friend_request",
    "listFriends": "friends",
    "syncContacts": "sync_contacts",
    "setRemark": "set_remark",
    "deleteFriend": "delete_friend",
    "listBlocks": "blocks",
    "block": "block",
    "unblock": "unblock",
    # inbox and calls
    "pullInbox": "inbox",
    "ackInbox": "inbox_ack",
    "turnCredentials": "turn_credentials",
    # groups
    "createGroup": "create_group",
    "listGroups": "groups",
    "getGroup": "group",
    "updateGroup": "update_group",
    "configureGroup": "configure_group",
    "dismissGroup": "dismiss_group",
    "listGroupMembers": "group_members",
    "inviteGroupMembers": "invite",
    "removeGroupMembers": "remove_members",
    "leaveGroup": "leave_group",
    "transferGroup": "transfer_group",
    "setGroupRole": "set_role",
    "muteGroupMember": "mute_member",
    "setGroupAlias": "set_alias",
    "requestToJoinGroup": "request_to_join",
    "banGroupUsers": "ban_users",
    "unbanGroupUsers": "unban_users",
    "listGroupBans": "group_bans",
    "createGroupInvite": "create_invite",
    "listGroupInvites": "group_invites",
    "revokeGroupInvite": "revoke_invite",
    "listJoinRequests": "join_requests",
    "approveJoinRequest": "approve_join",
    "rejectJoinRequest": "reject_join",
    "setGroupAvatar": "set_group_avatar",
    # files
    "uploadFile": "upload_file",
    "listFiles": "files",
    "getFile": "file",
    "deleteFile": "delete_file",
    "downloadFile": "download",
    "downloadThumbnail": "download_thumbnail",
    "linkFile": "link_file",
    "beginDirectUpload": "begin_direct_upload",
    "completeDirectUpload": "complete_direct_upload",
    "getAvatar": "avatar",
    "setMyAvatar": "set_my_avatar",
    # conversations and history
    "listConversations": "conversations",
    "updateConversation": "update_conversation",
    "conversationReaders": "readers",
    "listMessages": "messages",
    "getMessage": "message",
    "hideMessages": "hide_messages",
    # the server
    "health": "health",
    "metrics": "metrics",
    "openapi": "openapi",
}

#: Methods that call a route listed above another way (a signed link to downloadFile).
ALSO_CALLS: Mapping[str, str] = {"download_link": "downloadFile"}
