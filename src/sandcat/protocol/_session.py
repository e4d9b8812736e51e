"""The session state machine, as a table (after h11's ``_state.py``).

The gateway feeds every decoded client frame to `Session.receive` and reports
its own decisions with the event methods; the table says whether the frame
or event is allowed and which state follows. Nothing here does I/O or keeps
time: the auth and re-auth timeouts belong to the gateway.

States (SPEC.md "Session rules")::

    AWAITING_HELLO --HELLO--> AUTHENTICATING --hello_accepted--> ACTIVE
          |                        |                               |
          |                  hello_rejected                 start_draining
          |                        v                               v
          +----- close() ------> CLOSED <------- close() ------ DRAINING

A frame the table does not allow raises `SessionError`; `_REFUSALS` says
which ERR code and close code to answer with.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, TypeAlias

from ._errors import CloseCode, ErrorCode, SessionError
from ._frames import (
    Auth,
    ClientFrame,
    ConvSet,
    Edit,
    Hello,
    Hide,
    History,
    InboxAck,
    InboxPull,
    Ping,
    Pull,
    Read,
    Readers,
    Recall,
    Send,
    Sync,
)
from ._signals import Call, PresenceSet, Typing

__all__ = ["Session", "SessionState"]


class SessionState(enum.Enum):
    """Where a connection is in its life."""

    AWAITING_HELLO = enum.auto()
    AUTHENTICATING = enum.auto()
    ACTIVE = enum.auto()
    DRAINING = enum.auto()
    CLOSED = enum.auto()


class _Event(enum.Enum):
    """Decisions the server reports to the session."""

    HELLO_ACCEPTED = enum.auto()
    HELLO_REJECTED = enum.auto()
    START_DRAINING = enum.auto()
    CLOSE = enum.auto()


_Trigger: TypeAlias = type[ClientFrame] | _Event

_S = SessionState
_SIGNALS: Final = (Typing, PresenceSet, Call)
_REQUESTS: Final = (
    Ping,
    Auth,
    Send,
    Pull,
    Sync,
    Read,
    InboxPull,
    InboxAck,
    *_SIGNALS,
    ConvSet,
    Readers,
)
# Requests that go through the send pipeline (they write a seq'd event).
_WRITES: Final = (Send, Recall, Edit)
_TIMELINE: Final = (Recall, Edit, History, Hide)

_TRANSITIONS: Final[Mapping[tuple[SessionState, _Trigger], SessionState]] = {
    (_S.AWAITING_HELLO, Hello): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _Event.HELLO_ACCEPTED): _S.ACTIVE,
    (_S.AUTHENTICATING, _Event.HELLO_REJECTED): _S.CLOSED,
    **{(_S.ACTIVE, frame): _S.ACTIVE for frame in _REQUESTS + _TIMELINE},
    (_S.ACTIVE, _Event.START_DRAINING): _S.DRAINING,
    # A draining server still answers reads so clients can finish their
    # work; new messages must go to an instance that is staying up.
    **{
        (_S.DRAINING, frame): _S.DRAINING for frame in _REQUESTS + _TIMELINE if frame not in _WRITES
    },
    # Draining again, or draining a session not yet active, changes nothing:
    # shutdown closes those connections with 1001 anyway.
    **{(state, _Event.START_DRAINING): state for state in _S if state is not _S.ACTIVE},
    **{(state, _Event.CLOSE): _S.CLOSED for state in _S},
}

# Why a frame is refused in a state: (ERR code, close code or None, reason).
# Keys are (state, frame type), with (state, None) as the state's default.
_Refusal: TypeAlias = tuple[ErrorCode, CloseCode | None, str]
_REFUSALS: Final[Mapping[tuple[SessionState, type[ClientFrame] | None], _Refusal]] = {
    (_S.AWAITING_HELLO, None): (
        ErrorCode.UNAUTHENTICATED,
        CloseCode.UNAUTHENTICATED,
        "the first frame must be HELLO",
    ),
    (_S.AUTHENTICATING, None): (
        ErrorCode.UNAUTHENTICATED,
        CloseCode.UNAUTHENTICATED,
        "wait for the reply to HELLO before sending more frames",
    ),
    (_S.ACTIVE, Hello): (ErrorCode.BAD_REQUEST, None, "already authenticated"),
    (_S.DRAINING, Hello): (ErrorCode.BAD_REQUEST, None, "already authenticated"),
    **{
        (_S.DRAINING, frame): (
            ErrorCode.UNAVAILABLE,
            None,
            "server is shutting down; send again after reconnecting",
        )
        for frame in _WRITES
    },
    # The close is already under way (its code was chosen by whatever closed
    # the session); a frame still read is dropped. 1000 only matters if the
    # transport is somehow still open.
    (_S.CLOSED, None): (ErrorCode.UNAVAILABLE, CloseCode.NORMAL, "the session is closed"),
}


class Session:
    """The protocol state of one connection, server side.

    Not thread-safe; owned by the connection's reader task.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = SessionState.AWAITING_HELLO

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    def receive(self, frame: ClientFrame) -> SessionState:
        """Account for a frame from the client.

        Returns:
            The new state.

        Raises:
            SessionError: the frame is not allowed now; ``code`` is the ERR
                to answer with and ``close_code`` the close to follow (None:
                keep the connection). The state does not change.
        """
        frame_type = type(frame)
        next_state = _TRANSITIONS.get((self._state, frame_type))
        if next_state is None:
            refusal = _REFUSALS.get((self._state, frame_type)) or _REFUSALS[(self._state, None)]
            code, close_code, reason = refusal
            raise SessionError(
                code,
                f"{frame.op.name} is not allowed in state {self._state.name}: {reason}",
                close_code=close_code,
            )
        self._state = next_state
        return next_state

    def hello_accepted(self) -> None:
        """The HELLO's token was valid: AUTHENTICATING -> ACTIVE."""
        self._fire(_Event.HELLO_ACCEPTED)

    def hello_rejected(self) -> None:
        """The HELLO's token was refused: AUTHENTICATING -> CLOSED."""
        self._fire(_Event.HELLO_REJECTED)

    def start_draining(self) -> None:
        """The server is shutting down: ACTIVE -> DRAINING; else no change."""
        self._fire(_Event.START_DRAINING)

    def close(self) -> None:
        """The connection is closing, for any reason: -> CLOSED. Idempotent."""
        self._fire(_Event.CLOSE)

    def _fire(self, event: _Event) -> None:
        next_state = _TRANSITIONS.get((self._state, event))
        if next_state is None:
            # The server's own bookkeeping is wrong; nothing the client did.
            raise SessionError(
                ErrorCode.INTERNAL,
                f"event {event.name.lower()} is not allowed in state {self._state.name}",
                close_code=None,
            )
        self._state = next_state
