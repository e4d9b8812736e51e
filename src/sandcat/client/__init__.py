"""The Sandcat client SDK for Trio.

Log in and keep a device connected::

    async with open_client("http://127.0.0.1:50001", login="ann", password=...,
                           device="laptop") as client:
        ack = await client.session.send(cid, text="hi")
        async for msg in client.session.messages():
            ...

or, with a token from elsewhere, ``open_session(ws_url, token, device=...)``.
``client.api`` (`HttpApi`) has a method for every route of the HTTP API
(`OPERATIONS` maps the OpenAPI operationIds to them), each taking the access
token first (``await client.access_token()``); ``client.send_file(cid, data,
content_type=..., kind="image")`` uploads a file and sends the message that
refers to it.
Messages arrive per conversation in seq order, exactly once, holes filled by
PULL; sends are resent with their ``cmid`` across reconnects until acked.
"""

from .client import Client, SentFile, open_client, open_session
from .conversations import Conversations
from .credentials import Credentials, RefreshingCredentials, StaticToken
from .errors import HttpError, SandcatClientError, SessionClosed
from .http import ALSO_CALLS, OPERATIONS, HttpApi
from .http_contacts import Blocked, ContactChanges, Friend, FriendRequest, FriendRequests
from .http_conversations import ConversationList, ConversationSettings
from .http_files import AvatarSet, DirectUpload, FileInfo, FileLinks, FileList, attachment
from .http_groups import (
    Ban,
    BanPage,
    Group,
    GroupMember,
    Invitation,
    InviteLink,
    JoinRequest,
    MemberPage,
)
from .http_people import (
    Login,
    SessionInfo,
    Tokens,
    TurnCredentials,
    User,
    UserPage,
)
from .link import FINAL_CLOSES
from .options import SessionOptions, SessionStatistics
from .replies import Ack, Conversation, InboxPage, Page, ReadersPage, SyncResult
from .session import Session
from .signals import CallPlaced, PresenceSnapshot, Signals
from .websocket import SUBPROTOCOL

__all__ = [
    "ALSO_CALLS",
    "FINAL_CLOSES",
    "OPERATIONS",
    "SUBPROTOCOL",
    "Ack",
    "AvatarSet",
    "Ban",
    "BanPage",
    "Blocked",
    "CallPlaced",
    "Client",
    "ContactChanges",
    "Conversation",
    "ConversationList",
    "ConversationSettings",
    "Conversations",
    "Credentials",
    "DirectUpload",
    "FileInfo",
    "FileLinks",
    "FileList",
    "Friend",
    "FriendRequest",
    "FriendRequests",
    "Group",
    "GroupMember",
    "HttpApi",
    "HttpError",
    "InboxPage",
    "Invitation",
    "InviteLink",
    "JoinRequest",
    "Login",
    "MemberPage",
    "Page",
    "PresenceSnapshot",
    "ReadersPage",
    "RefreshingCredentials",
    "SandcatClientError",
    "SentFile",
    "Session",
    "SessionClosed",
    "SessionInfo",
    "SessionOptions",
    "SessionStatistics",
    "Signals",
    "StaticToken",
    "SyncResult",
    "Tokens",
    "TurnCredentials",
    "User",
    "UserPage",
    "attachment",
    "open_client",
    "open_session",
]
