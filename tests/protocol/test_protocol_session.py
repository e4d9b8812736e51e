"""The session state machine, checked against the whole table of SPEC.md."""

from __future__ import annotations

import pytest

from sandcat.protocol import (
    Auth,
    ClientFrame,
    CloseCode,
    ErrorCode,
    Hello,
    InboxAck,
    InboxPull,
    Ping,
    Pull,
    Read,
    Send,
    Session,
    SessionError,
    SessionState,
    Sync,
)

S = SessionState
FRAMES: dict[str, ClientFrame] = {
    "hello": Hello(rid=1, token="t", device="d", platform="web"),
    "ping": Ping(rid=1),
    "auth": Auth(rid=1, token="t"),
    "send": Send(rid=1, cid="g:g", cmid="c", kind=1, body={"text": "x"}),
    "pull": Pull(rid=1, cid="g:g", after=0),
    "sync": Sync(rid=1),
    "read": Read(rid=1, cid="g:g", seq=1),
    "inbox_pull": InboxPull(rid=1),
    "inbox_ack": InboxAck(rid=1, upto=1),
}
REQUESTS = ["ping", "auth", "send", "pull", "sync", "read", "inbox_pull", "inbox_ack"]


def session_in(state: SessionState) -> Session:
    session = Session()
    if state is S.CLOSED:
        session.close()
        return session
    if state is S.AWAITING_HELLO:
        return session
    session.receive(FRAMES["hello"])
    if state is S.AUTHENTICATING:
        return session
    session.hello_accepted()
    if state is S.DRAINING:
        session.start_draining()
    return session


@pytest.mark.parametrize("state", list(S))
def test_session_in_reaches_each_state(state: SessionState) -> None:
    assert session_in(state).state is state


def test_a_new_session_awaits_hello() -> None:
    assert Session().state is S.AWAITING_HELLO


def test_hello_then_accept_makes_the_session_active() -> None:
    session = Session()
    assert session.receive(FRAMES["hello"]) is S.AUTHENTICATING
    session.hello_accepted()
    assert session.state is S.ACTIVE


def test_rejected_hello_closes_the_session() -> None:
    session = session_in(S.AUTHENTICATING)
    session.hello_rejected()
    assert session.state is S.CLOSED


@pytest.mark.parametrize("name", REQUESTS)
def test_requests_before_hello_close_with_4002(name: str) -> None:
    session = Session()
    with pytest.raises(SessionError, match="not allowed in state AWAITING_HELLO") as info:
        session.receive(FRAMES[name])
    assert (info.value.code, info.value.close_code) == (
        ErrorCode.UNAUTHENTICATED,
        CloseCode.UNAUTHENTICATED,
    )
    assert FRAMES[name].op.name in str(info.value)
    assert session.state is S.AWAITING_HELLO


@pytest.mark.parametrize("name", list(FRAMES))
def test_any_frame_while_authenticating_closes_with_4002(name: str) -> None:
    with pytest.raises(SessionError) as info:
        session_in(S.AUTHENTICATING).receive(FRAMES[name])
    assert (info.value.code, info.value.close_code) == (
        ErrorCode.UNAUTHENTICATED,
        CloseCode.UNAUTHENTICATED,
    )


@pytest.mark.parametrize("name", REQUESTS)
def test_active_session_takes_every_request(name: str) -> None:
    session = session_in(S.ACTIVE)
    assert session.receive(FRAMES[name]) is S.ACTIVE


@pytest.mark.parametrize("state", [S.ACTIVE, S.DRAINING])
def test_second_hello_is_a_bad_request_that_keeps_the_connection(state: SessionState) -> None:
    session = session_in(state)
    with pytest.raises(SessionError, match=r"HELLO is not allowed .*already authenticated") as info:
        session.receive(FRAMES["hello"])
    assert (info.value.code, info.value.close_code) == (ErrorCode.BAD_REQUEST, None)
    assert session.state is state


@pytest.mark.parametrize("name", ["ping", "auth", "pull", "sync", "read"])
def test_draining_session_still_serves_reads(name: str) -> None:
    assert session_in(S.DRAINING).receive(FRAMES[name]) is S.DRAINING


def test_draining_session_refuses_send_as_unavailable() -> None:
    with pytest.raises(SessionError, match="shutting down") as info:
        session_in(S.DRAINING).receive(FRAMES["send"])
    assert (info.value.code, info.value.close_code) == (ErrorCode.UNAVAILABLE, None)


@pytest.mark.parametrize("name", list(FRAMES))
def test_closed_session_refuses_everything(name: str) -> None:
    with pytest.raises(SessionError, match="state CLOSED") as info:
        session_in(S.CLOSED).receive(FRAMES[name])
    assert (info.value.code, info.value.close_code) == (ErrorCode.UNAVAILABLE, CloseCode.NORMAL)


@pytest.mark.parametrize("state", list(S))
def test_start_draining_only_moves_an_active_session(state: SessionState) -> None:
    session = session_in(state)
    session.start_draining()
    assert session.state is (S.DRAINING if state is S.ACTIVE else state)


@pytest.mark.parametrize("state", list(S))
def test_close_is_allowed_from_every_state_and_idempotent(state: SessionState) -> None:
    session = session_in(state)
    session.close()
    session.close()
    assert session.state is S.CLOSED


@pytest.mark.parametrize("state", [S.AWAITING_HELLO, S.ACTIVE, S.DRAINING, S.CLOSED])
@pytest.mark.parametrize("event", ["hello_accepted", "hello_rejected"])
def test_hello_verdict_outside_authenticating_is_an_internal_error(
    state: SessionState, event: str
) -> None:
    session = session_in(state)
    with pytest.raises(SessionError, match=f"event {event} is not allowed in state") as info:
        getattr(session, event)()
    assert (info.value.code, info.value.close_code) == (ErrorCode.INTERNAL, None)
    assert session.state is state
