"""The Sandcat client SDK for Trio.

Log in and keep a device connected::

    async with open_client("http://127.0.0.1:50001", login="ann", password=...,
                           device="laptop") as client:
        ack = await client.session.send(cid, text="hi")
        async for msg in client.session.messages():
            ...

or, with a token from elsewhere, ``open_session(ws_url, token, device=...)``.
Messages arrive per conversation in seq order, exactly once, holes filled by
PULL; sends are resent with their ``cmid`` across reconnects until acked.
"""

from .client import Client, open_client, open_session
from .conversations import Conversations
from .credentials import Credentials, RefreshingCredentials, StaticToken
from .errors import HttpError, SandcatClientError, SessionClosed
from .http import HttpApi, Login, Tokens
from .link import FINAL_CLOSES
from .options import SessionOptions, SessionStatistics
from .replies import Ack, Conversation, InboxPage, Page, ReadersPage, SyncResult
from .session import Session
from .signals import CallPlaced, PresenceSnapshot, Signals
from .websocket import SUBPROTOCOL

__all__ = [
    "FINAL_CLOSES",
    "SUBPROTOCOL",
    "Ack",
    "CallPlaced",
    "Client",
    "Conversation",
    "Conversations",
    "Credentials",
    "HttpApi",
    "HttpError",
    "InboxPage",
    "Login",
    "Page",
    "PresenceSnapshot",
    "ReadersPage",
    "RefreshingCredentials",
    "SandcatClientError",
    "Session",
    "SessionClosed",
    "SessionOptions",
    "SessionStatistics",
    "Signals",
    "StaticToken",
    "SyncResult",
    "Tokens",
    "open_client",
    "open_session",
]
