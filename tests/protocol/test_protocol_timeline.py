"""The timeline frames (RECALL, EDIT, HISTORY, HIDE) and the forward, recall, edit fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from sandcat.protocol import (
    MENTION_ALL,
    Edit,
    ErrorCode,
    Hide,
    History,
    Msg,
    Op,
    Recall,
    RequestError,
    Send,
    Session,
    SessionError,
    decode_client,
    encode,
)

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
RECALL: dict[str, Any] = {"rid": 1, "cid": "g:g", "cmid": "c", "seq": 3}


def test_valid_timeline_frames_construct() -> None:
    assert Recall(**RECALL).op == Op.RECALL == 16
    assert Edit(**RECALL, body={"text": "y"}).op == Op.EDIT == 17
    assert History(rid=1, cid="g:g").op == Op.HISTORY == 18
    assert Hide(rid=1, cid="g:g", seqs=(1,) * 200).op == Op.HIDE == 19
    History(rid=1, cid="g:g", before=2**53 - 1, limit=200)
    History(rid=1, cid="g:g", after=0, limit=1)
    History(rid=1, mid="m-1")
    Send(**SEND, mentions=(MENTION_ALL, "a"), forward={"cid": "d:a:b", "seq": 0})
    Msg(**MSG, forward={"cid": "d:a:b", "seq": 9, "from": "a"}, edited_at=1, recalled=True)


CASES: list[tuple[Callable[..., object], dict[str, Any], str]] = [
    (Recall, {**RECALL, "rid": 0}, "rid"),
    (Recall, {**RECALL, "cid": "x"}, "cid"),
    (Recall, {**RECALL, "cmid": ""}, "cmid"),
    (Recall, {**RECALL, "seq": -1}, "seq"),
    (Edit, {**RECALL, "seq": "3", "body": {}}, "seq"),
    (Edit, {**RECALL, "cid": "g:", "body": {}}, "cid"),
    (History, {"rid": 0, "cid": "g:g"}, "rid"),
    (History, {"rid": 1}, "cid"),
    (History, {"rid": 1, "cid": "g:g", "mid": "m"}, "cid"),
    (History, {"rid": 1, "cid": "d:b:a"}, "cid"),
    (History, {"rid": 1, "mid": "m m"}, "mid"),
    (History, {"rid": 1, "mid": "m", "before": 3}, "mid"),
    (History, {"rid": 1, "mid": "m", "after": 3}, "mid"),
    (History, {"rid": 1, "cid": "g:g", "before": 3, "after": 1}, "before"),
    (History, {"rid": 1, "cid": "g:g", "before": -1}, "before"),
    (History, {"rid": 1, "cid": "g:g", "after": 2**53}, "after"),
    (History, {"rid": 1, "cid": "g:g", "limit": 0}, "limit"),
    (History, {"rid": 1, "cid": "g:g", "limit": 201}, "limit"),
    (Hide, {"rid": 0, "cid": "g:g", "seqs": (1,)}, "rid"),
    (Hide, {"rid": 1, "cid": "g", "seqs": (1,)}, "cid"),
    (Hide, {"rid": 1, "cid": "g:g", "seqs": ()}, "seqs"),
    (Hide, {"rid": 1, "cid": "g:g", "seqs": (0,)}, "seqs"),
    (Hide, {"rid": 1, "cid": "g:g", "seqs": (1,) * 201}, "seqs"),
    (Hide, {"rid": 1, "cid": "g:g", "seqs": [1]}, "seqs"),
    (Hide, {"rid": 1, "cid": "g:g", "seqs": (True,)}, "seqs"),
    (Send, {**SEND, "mentions": ("@everyone",)}, "mentions"),
    (Send, {**SEND, "forward": {"cid": "d:a:b"}}, "forward"),
    (Send, {**SEND, "forward": {"cid": "d:a:b", "seq": 1, "from": "a"}}, "forward"),
    (Send, {**SEND, "forward": {"cid": "d:b:a", "seq": 1}}, "forward"),
    (Send, {**SEND, "forward": {"cid": "d:a:b", "seq": -1}}, "forward"),
    (Send, {**SEND, "forward": [1, 2]}, "forward"),
    (Msg, {**MSG, "forward": {"cid": "d:a:b", "seq": 1}}, "forward"),
    (Msg, {**MSG, "forward": {"cid": "d:a:b", "seq": 1, "from": "a:b"}}, "forward"),
    (Msg, {**MSG, "edited_at": -1}, "edited_at"),
    (Msg, {**MSG, "recalled": False}, "recalled"),
]


@pytest.mark.parametrize(("cls", "kwargs", "field"), CASES)
def test_invalid_field_raises_value_error_naming_it(
    cls: Callable[..., object], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}: must be "):
        cls(**kwargs)


def test_hide_seqs_decode_from_a_list_and_encode_as_one() -> None:
    data = msgpack.packb([19, 5, {"cid": "g:g", "seqs": [3, 1]}])
    frame = decode_client(data)
    assert frame == Hide(rid=5, cid="g:g", seqs=(3, 1))
    assert encode(frame) == data


def test_history_without_cid_or_mid_is_a_bad_request() -> None:
    with pytest.raises(RequestError) as info:
        decode_client(msgpack.packb([18, 5, {}]))
    assert (info.value.code, info.value.rid) == (ErrorCode.BAD_REQUEST, 5)


def _active() -> Session:
    session = Session()
    session.receive(
        decode_client(msgpack.packb([1, 1, {"token": "t", "device": "d", "platform": "p"}]))
    )
    session.hello_accepted()
    return session


@pytest.mark.parametrize(
    "frame",
    [
        Recall(**RECALL),
        Edit(**RECALL, body={}),
        History(rid=1, cid="g:g"),
        Hide(rid=1, cid="g:g", seqs=(1,)),
    ],
)
def test_timeline_frames_are_processed_when_active(frame: object) -> None:
    session = _active()
    session.receive(frame)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame", [Recall(**RECALL), Edit(**RECALL, body={})])
def test_recall_and_edit_are_refused_while_draining(frame: object) -> None:
    session = _active()
    session.start_draining()
    with pytest.raises(SessionError) as info:
        session.receive(frame)  # type: ignore[arg-type]
    assert (info.value.code, info.value.close_code) == (ErrorCode.UNAVAILABLE, None)


@pytest.mark.parametrize("frame", [History(rid=1, cid="g:g"), Hide(rid=1, cid="g:g", seqs=(1,))])
def test_history_and_hide_are_answered_while_draining(frame: object) -> None:
    session = _active()
    session.start_draining()
    session.receive(frame)  # type: ignore[arg-type]
