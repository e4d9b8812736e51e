"""Frames validate every field on construction, naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandcat.protocol import (
    Auth,
    Err,
    ErrorCode,
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
    Sync,
)

HELLO: dict[str, Any] = {"rid": 1, "token": "t", "device": "d", "platform": "web"}
SEND: dict[str, Any] = {"rid": 1, "cid": "g:g", "cmid": "c", "kind": 1, "body": {"text": "x"}}
MSG: dict[str, Any] = {
    "cid": "g:g",
    "seq": 1,
    "mid": "m",
    "sender": "u",
    "kind": 1,
    "body": None,
    "ts": 0,
}
ERR: dict[str, Any] = {"rid": 1, "code": ErrorCode.INTERNAL, "message": ""}
PULL: dict[str, Any] = {"rid": 1, "cid": "g:g", "after": 0}
NOTIFY: dict[str, Any] = {"nseq": 1, "type": "friend.requested", "data": {}, "ts": 0}


def test_every_frame_carries_its_op() -> None:
    assert [cls.op for cls in (Hello, Ok, Err, Ping, Auth, Send, Pull, Sync, Read)] == [
        Op.HELLO,
        Op.OK,
        Op.ERR,
        Op.PING,
        Op.AUTH,
        Op.SEND,
        Op.PULL,
        Op.SYNC,
        Op.READ,
    ]
    assert (Msg.op, ReadState.op, GoAway.op) == (Op.MSG, Op.READ_STATE, Op.GOAWAY)
    assert (InboxPull.op, InboxAck.op, Notify.op) == (Op.INBOX_PULL, Op.INBOX_ACK, Op.NOTIFY)


def test_pushes_have_rid_0() -> None:
    assert Msg(**MSG).rid == 0
    assert ReadState(cid="g:g", user="u", seq=0).rid == 0
    assert GoAway(reason="r", reconnect_after_ms=1).rid == 0
    assert Notify(**NOTIFY).rid == 0


def test_frames_are_frozen() -> None:
    frame = Ping(rid=1)
    with pytest.raises(AttributeError):
        frame.rid = 2  # type: ignore[misc]


def test_valid_frames_construct() -> None:
    Hello(**{**HELLO, "token": None, "client": "sandcat-py/0.1 (linux)"})
    Auth(rid=2**32 - 1, token="x" * 4096)
    Send(**{**SEND, "cmid": "é" * 32, "kind": 2**31 - 1, "reply_to": 2**53 - 1, "mentions": ()})
    Pull(**{**PULL, "limit": 200})
    Pull(**{**PULL, "limit": 1})
    Sync(rid=1, since=0)
    Read(rid=1, cid="d:a:b", seq=0)
    Ok(rid=1, body={})
    Err(**{**ERR, "retry_after_ms": 2**32 - 1, "message": "m" * 1024})
    Msg(**{**MSG, "cmid": "c", "device": "d", "reply_to": 1, "mentions": ("a",)})
    InboxPull(rid=1, after=2**53 - 1, limit=200)
    InboxAck(rid=1, upto=0)
    Notify(**{**NOTIFY, "type": "x" * 64})


CASES: list[tuple[Callable[..., object], dict[str, Any], str]] = [
    (Ping, {"rid": 0}, "rid"),
    (Ping, {"rid": 2**32}, "rid"),
    (Ping, {"rid": True}, "rid"),
    (Ping, {"rid": -1}, "rid"),
    (Hello, {**HELLO, "token": ""}, "token"),
    (Hello, {**HELLO, "token": "x" * 4097}, "token"),
    (Hello, {**HELLO, "token": 5}, "token"),
    (Hello, {**HELLO, "device": "a b"}, "device"),
    (Hello, {**HELLO, "platform": ""}, "platform"),
    (Hello, {**HELLO, "platform": "x" * 65}, "platform"),
    (Hello, {**HELLO, "platform": "web\n"}, "platform"),
    (Hello, {**HELLO, "client": 3}, "client"),
    (Auth, {"rid": 1, "token": None}, "token"),
    (Send, {**SEND, "cid": "d:b:a"}, "cid"),
    (Send, {**SEND, "cmid": ""}, "cmid"),
    (Send, {**SEND, "cmid": "é" * 33}, "cmid"),
    (Send, {**SEND, "cmid": 1}, "cmid"),
    (Send, {**SEND, "kind": 2**31}, "kind"),
    (Send, {**SEND, "kind": 1.0}, "kind"),
    (Send, {**SEND, "kind": False}, "kind"),
    (Send, {**SEND, "reply_to": 2**53}, "reply_to"),
    (Send, {**SEND, "mentions": ["a"]}, "mentions"),
    (Send, {**SEND, "mentions": ("a",) * 101}, "mentions"),
    (Send, {**SEND, "mentions": ("",)}, "mentions"),
    (Pull, {**PULL, "after": -1}, "after"),
    (Pull, {**PULL, "limit": 0}, "limit"),
    (Pull, {**PULL, "limit": 201}, "limit"),
    (Pull, {**PULL, "limit": True}, "limit"),
    (Sync, {"rid": 1, "since": "1"}, "since"),
    (Read, {"rid": 1, "cid": "c", "seq": 0}, "cid"),
    (Read, {"rid": 1, "cid": "g:g", "seq": 2**53}, "seq"),
    (Ok, {"rid": 1, "body": []}, "body"),
    (Ok, {"rid": 1, "body": {1: 2}}, "body"),
    (Ok, {"rid": 0, "body": {}}, "rid"),
    (Err, {**ERR, "code": "internal"}, "code"),
    (Err, {**ERR, "message": "m" * 1025}, "message"),
    (Err, {**ERR, "message": None}, "message"),
    (Err, {**ERR, "retry_after_ms": 2**32}, "retry_after_ms"),
    (Msg, {**MSG, "cid": "g:"}, "cid"),
    (Msg, {**MSG, "seq": -1}, "seq"),
    (Msg, {**MSG, "mid": ""}, "mid"),
    (Msg, {**MSG, "sender": "a:b"}, "from"),
    (Msg, {**MSG, "kind": -1}, "kind"),
    (Msg, {**MSG, "ts": 2**53}, "ts"),
    (Msg, {**MSG, "cmid": ""}, "cmid"),
    (Msg, {**MSG, "device": "d d"}, "device"),
    (Msg, {**MSG, "reply_to": -1}, "reply_to"),
    (Msg, {**MSG, "mentions": ("a b",)}, "mentions"),
    (ReadState, {"cid": "g:g", "user": "", "seq": 0}, "user"),
    (ReadState, {"cid": "g:g", "user": "u", "seq": None}, "seq"),
    (ReadState, {"cid": "", "user": "u", "seq": 0}, "cid"),
    (GoAway, {"reason": "r" * 257, "reconnect_after_ms": 0}, "reason"),
    (InboxPull, {"rid": 1, "after": -1}, "after"),
    (InboxPull, {"rid": 1, "limit": 0}, "limit"),
    (InboxPull, {"rid": 0}, "rid"),
    (InboxAck, {"rid": 1, "upto": 2**53}, "upto"),
    (InboxAck, {"rid": 1, "upto": None}, "upto"),
    (Notify, {**NOTIFY, "nseq": -1}, "nseq"),
    (Notify, {**NOTIFY, "type": ""}, "type"),
    (Notify, {**NOTIFY, "type": "x" * 65}, "type"),
    (Notify, {**NOTIFY, "type": "Friend"}, "type"),
    (Notify, {**NOTIFY, "type": 3}, "type"),
    (Notify, {**NOTIFY, "data": []}, "data"),
    (Notify, {**NOTIFY, "data": {1: 2}}, "data"),
    (Notify, {**NOTIFY, "ts": None}, "ts"),
    (GoAway, {"reason": "r", "reconnect_after_ms": 2**32}, "reconnect_after_ms"),
]


@pytest.mark.parametrize(("cls", "kwargs", "field"), CASES)
def test_invalid_field_raises_value_error_naming_it(
    cls: Callable[..., object], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}: must be "):
        cls(**kwargs)
