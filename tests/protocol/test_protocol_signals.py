"""Signal frames (TYPING, PRESENCE_SET, PRESENCE, CALL, CALL_EVENT): every field rule."""

from __future__ import annotations

from typing import Any

import pytest

from sandcat.protocol import (
    Call,
    CallEvent,
    Presence,
    PresenceSet,
    RequestError,
    Typing,
    TypingEvent,
    decode_client,
    decode_server,
    encode,
)

CANDIDATE = {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdp_m_line_index": 1}


@pytest.mark.parametrize(
    "frame",
    [
        Typing(rid=1, cid="g:team"),
        PresenceSet(rid=2, state="busy"),
        Call(rid=3, action="hangup", call="k1"),
        Call(rid=4, action="candidate", call="k1", candidate={"candidate": ""}),
    ],
)
def test_client_signal_frames_round_trip(frame: Any) -> None:
    assert decode_client(encode(frame)) == frame


@pytest.mark.parametrize(
    "frame",
    [
        TypingEvent(cid="d:a:b", user="a", active=False),
        Presence(users=()),
        CallEvent(call="k1", action="candidate", candidate=CANDIDATE),
        CallEvent(call="k1", action="offer", sdp="v=0"),
        CallEvent(call="k1", action="ended", outcome="missed", reason="timeout", duration_ms=0),
    ],
)
def test_server_signal_frames_round_trip(frame: Any) -> None:
    decoded = decode_server(encode(frame))
    assert decoded == frame
    assert decoded.rid == 0


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"action": "invite", "peer": "b"}, "media: required"),
        ({"action": "invite", "peer": "b!", "media": "audio"}, "peer:"),
        ({"action": "offer", "call": "k", "sdp": 5}, "sdp:"),
        ({"action": "candidate", "call": "k", "candidate": ["x"]}, "candidate:"),
        ({"action": "candidate", "call": "k", "candidate": {"candidate": 1}}, "candidate:"),
        ({"action": "candidate", "call": "k", "candidate": {"sdp_mid": 1}}, "candidate:"),
        (
            {
                "action": "candidate",
                "call": "k",
                "candidate": {"candidate": "", "sdp_mid": "x" * 65},
            },
            "candidate:",
        ),
        (
            {
                "action": "candidate",
                "call": "k",
                "candidate": {"candidate": "", "sdp_m_line_index": 70000},
            },
            "candidate:",
        ),
        ({"action": "accept", "call": "k", "media": "smell"}, "media:"),
    ],
)
def test_bad_call_requests_name_the_field(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Call(rid=1, **fields)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"action": "hangup"}, "action:"),
        ({"action": "ring", "sender": "a b"}, "from:"),
        ({"action": "ring", "media": "3d"}, "media:"),
        ({"action": "accepted", "device": ""}, "device:"),
        ({"action": "offer", "sdp": ""}, "sdp:"),
        ({"action": "candidate", "candidate": {"x": 1}}, "candidate:"),
        ({"action": "ended", "outcome": "exploded"}, "outcome:"),
        ({"action": "ended", "reason": "bored"}, "reason:"),
        ({"action": "ended", "duration_ms": -1}, "duration_ms:"),
    ],
)
def test_bad_call_events_name_the_field(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CallEvent(call="k1", **fields)


@pytest.mark.parametrize(
    ("users", "problem"),
    [
        ([{"user": "a", "state": "online"}], "users: must be a list"),
        (({"user": "a", "state": "online"},) * 10_001, "users: must be a list"),
        (("a",), "each entry"),
        (({"user": "a", "state": "online", "mood": "x"},), "each entry"),
        (({"user": "", "state": "online"},), "users.user"),
        (({"user": "a", "state": "invisible"},), "users.state"),
        (({"user": "a", "state": "offline", "last_seen": 2**53},), "users.last_seen"),
    ],
)
def test_bad_presence_pushes_name_the_field(users: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Presence(users=users)


def test_typing_active_must_be_a_bool_and_pushes_have_a_user() -> None:
    with pytest.raises(ValueError, match="active:"):
        Typing(rid=1, cid="g:x", active=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user:"):
        TypingEvent(cid="g:x", user="", active=True)
    with pytest.raises(ValueError, match="state:"):
        PresenceSet(rid=1, state="offline")


def test_a_presence_push_with_a_rid_is_refused_by_clients() -> None:
    data = bytes.fromhex("932a0181a5757365727390")  # [42, 1, {"users": []}]
    with pytest.raises(Exception, match="rid"):
        decode_server(data)
    with pytest.raises(RequestError, match="unknown op"):
        decode_client(bytes.fromhex("932a0181a5757365727390"))
