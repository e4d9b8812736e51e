"""CONV_SET, READERS and CONV_STATE: construction rules and the session table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandcat.protocol import (
    MAX_READERS_LIMIT,
    ConvSet,
    ConvState,
    ErrorCode,
    Hello,
    Op,
    Readers,
    RequestError,
    Session,
    SessionError,
    SessionState,
    Sync,
    decode_client,
    decode_server,
    encode,
)

STATE: dict[str, Any] = {
    "cid": "g:g",
    "pinned": True,
    "muted": False,
    "hidden": False,
    "cleared_seq": 0,
}


def test_ops_and_pushes() -> None:
    assert (ConvSet.op, Readers.op, ConvState.op) == (Op.CONV_SET, Op.READERS, Op.CONV_STATE)
    assert ConvState(**STATE).rid == 0


def test_valid_frames_construct() -> None:
    ConvSet(rid=1, cid="d:a:b", clear=True)
    ConvSet(rid=1, cid="g:g", pinned=False, muted=True, hidden=False, clear=False)
    Readers(rid=1, cid="g:g", seq=2**53 - 1, after="u" * 64, limit=1)
    Readers(rid=1, cid="g:g", seq=0, limit=MAX_READERS_LIMIT)
    ConvState(**{**STATE, "cleared_seq": 2**53 - 1})
    Sync(rid=1, limit=1000)
    Sync(rid=1, since=0, limit=1)


CASES: list[tuple[Callable[..., object], dict[str, Any], str]] = [
    (ConvSet, {"rid": 0, "cid": "g:g", "pinned": True}, "rid"),
    (ConvSet, {"rid": 1, "cid": "d:b:a", "pinned": True}, "cid"),
    (ConvSet, {"rid": 1, "cid": "g:g", "pinned": 1}, "pinned"),
    (ConvSet, {"rid": 1, "cid": "g:g", "muted": "yes"}, "muted"),
    (ConvSet, {"rid": 1, "cid": "g:g", "hidden": 0}, "hidden"),
    (ConvSet, {"rid": 1, "cid": "g:g", "clear": None, "pinned": None}, "body"),
    (ConvSet, {"rid": 1, "cid": "g:g", "clear": False}, "body"),
    (ConvSet, {"rid": 1, "cid": "g:g", "clear": 1}, "clear"),
    (Readers, {"rid": 1, "cid": "g:", "seq": 1}, "cid"),
    (Readers, {"rid": 1, "cid": "g:g", "seq": -1}, "seq"),
    (Readers, {"rid": 1, "cid": "g:g", "seq": 1, "after": "a:b"}, "after"),
    (Readers, {"rid": 1, "cid": "g:g", "seq": 1, "limit": 0}, "limit"),
    (Readers, {"rid": 1, "cid": "g:g", "seq": 1, "limit": MAX_READERS_LIMIT + 1}, "limit"),
    (ConvState, {**STATE, "cid": "x"}, "cid"),
    (ConvState, {**STATE, "pinned": None}, "pinned"),
    (ConvState, {**STATE, "hidden": 1}, "hidden"),
    (ConvState, {**STATE, "cleared_seq": 2**53}, "cleared_seq"),
    (Sync, {"rid": 1, "limit": 0}, "limit"),
    (Sync, {"rid": 1, "limit": 1001}, "limit"),
    (Sync, {"rid": 1, "limit": True}, "limit"),
]


@pytest.mark.parametrize(("cls", "kwargs", "field"), CASES)
def test_invalid_field_raises_value_error_naming_it(
    cls: Callable[..., object], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}: must "):
        cls(**kwargs)


def test_frames_round_trip() -> None:
    frame = ConvSet(rid=9, cid="g:g", hidden=True)
    assert decode_client(encode(frame)) == frame
    readers = Readers(rid=9, cid="g:g", seq=3, after="bob", limit=10)
    assert decode_client(encode(readers)) == readers
    assert decode_server(encode(ConvState(**STATE))) == ConvState(**STATE)


def test_a_conv_set_without_changes_is_a_bad_request() -> None:
    with pytest.raises(RequestError) as info:
        decode_client(bytes.fromhex("931e3f81a3636964a6673a7465616d"))
    assert info.value.code == ErrorCode.BAD_REQUEST
    assert info.value.rid == 63


@pytest.mark.parametrize(
    "frame", [ConvSet(rid=1, cid="g:g", pinned=True), Readers(rid=1, cid="g:g", seq=1)]
)
def test_the_session_admits_them_when_active_and_draining(frame: ConvSet | Readers) -> None:
    session = Session()
    with pytest.raises(SessionError):
        session.receive(frame)
    session = Session()
    session.receive(Hello(rid=1, token="t", device="d", platform="p"))
    session.hello_accepted()
    assert session.receive(frame) is SessionState.ACTIVE
    session.start_draining()
    assert session.receive(frame) is SessionState.DRAINING
