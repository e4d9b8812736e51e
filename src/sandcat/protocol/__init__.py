"""Sandcat's sans-IO wire protocol: frames, codec, limits and session rules.

Feed bytes to `decode_client` (or `decode_server`) to get a frame object,
check it against a `Session`, and turn frames into bytes with `encode`. This
package imports only the standard library and msgpack; the wire contract it
implements is ``protocol/SPEC.md``.
"""

from ._codec import decode_client, decode_server, encode, msg_body, notice_body
from ._content import CUSTOM_KIND_MIN, SERVER_KINDS, Kind, validate_content
from ._errors import (
    CloseCode,
    ContentError,
    ErrorCode,
    FrameError,
    ProtocolError,
    RequestError,
    SessionError,
)
from ._frames import (
    Auth,
    ClientFrame,
    Err,
    GoAway,
    Hello,
    InboxAck,
    InboxPull,
    Msg,
    Notify,
    Ok,
    Op,
    Ping,
    Pull,
    Read,
    ReadState,
    Send,
    ServerFrame,
    Sync,
)
from ._ids import direct_cid, group_cid, is_valid_cid, is_valid_id
from ._limits import DEFAULT_LIMITS, Limits
from ._session import Session, SessionState
from ._signals import (
    CALL_OUTCOMES,
    PRESENCE_STATES,
    Call,
    CallEvent,
    Presence,
    PresenceSet,
    Typing,
    TypingEvent,
)

__all__ = [
    "CALL_OUTCOMES",
    "CUSTOM_KIND_MIN",
    "DEFAULT_LIMITS",
    "PRESENCE_STATES",
    "SERVER_KINDS",
    "Auth",
    "Call",
    "CallEvent",
    "ClientFrame",
    "CloseCode",
    "ContentError",
    "Err",
    "ErrorCode",
    "FrameError",
    "GoAway",
    "Hello",
    "InboxAck",
    "InboxPull",
    "Kind",
    "Limits",
    "Msg",
    "Notify",
    "Ok",
    "Op",
    "Ping",
    "Presence",
    "PresenceSet",
    "ProtocolError",
    "Pull",
    "Read",
    "ReadState",
    "RequestError",
    "Send",
    "ServerFrame",
    "Session",
    "SessionError",
    "SessionState",
    "Sync",
    "Typing",
    "TypingEvent",
    "decode_client",
    "decode_server",
    "direct_cid",
    "encode",
    "group_cid",
    "is_valid_cid",
    "is_valid_id",
    "msg_body",
    "notice_body",
    "validate_content",
]
