"""The golden vectors in protocol/vectors/ hold byte for byte.

Valid vectors must decode to the frame their ``op``/``rid``/``body`` describe
and encode back to exactly the same bytes; invalid vectors must fail with the
recorded error. The expected frames are built here from the JSON, not by the
codec under test.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest

from sandcat.protocol import (
    Auth,
    Call,
    CallEvent,
    ConvSet,
    ConvState,
    Edit,
    Err,
    ErrorCode,
    FrameError,
    GoAway,
    Hello,
    Hide,
    History,
    InboxAck,
    InboxPull,
    Msg,
    Notify,
    Ok,
    Ping,
    Presence,
    PresenceSet,
    Pull,
    Read,
    Readers,
    ReadState,
    Recall,
    RequestError,
    Send,
    Sync,
    Typing,
    TypingEvent,
    decode_client,
    decode_server,
    encode,
    msg_body,
)

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
FRAMES: dict[int, type[Any]] = {
    1: Hello,
    2: Ok,
    3: Err,
    4: Ping,
    5: Auth,
    10: Send,
    11: Pull,
    12: Sync,
    13: Read,
    14: InboxPull,
    15: InboxAck,
    16: Recall,
    17: Edit,
    18: History,
    19: Hide,
    20: Msg,
    21: ReadState,
    22: Notify,
    24: ConvState,
    30: ConvSet,
    31: Readers,
    126: GoAway,
    40: Typing,
    41: PresenceSet,
    42: Presence,
    43: Call,
    44: CallEvent,
}
#: Ops whose frame type depends on who sends it (TYPING: request and push).
SERVER_FRAMES: dict[int, type[Any]] = {40: TypingEvent}
PUSHES = {20, 21, 22, 24, 126, 40, 42, 44}


def _load() -> list[dict[str, Any]]:
    vectors = []
    for path in sorted(VECTORS.glob("*.json")):
        for vector in json.loads(path.read_text(encoding="utf-8")):
            vectors.append({**vector, "file": path.name})
    return vectors


ALL = _load()
VALID = [v for v in ALL if "error" not in v]
INVALID = [v for v in ALL if "error" in v]


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _expected_frame(vector: dict[str, Any]) -> Any:
    body = _from_json(vector["body"])
    server = vector["direction"] == "server"
    cls = (SERVER_FRAMES if server else {}).get(vector["op"]) or FRAMES[vector["op"]]
    if cls is Ok:
        return Ok(rid=vector["rid"], body=body)
    pushed = server and vector["op"] in PUSHES
    kwargs: dict[str, Any] = {} if pushed else {"rid": vector["rid"]}
    if cls is Hello:
        kwargs["token"] = None  # the one optional field without a default
    for key, value in body.items():
        if key in ("mentions", "users", "seqs"):
            value = tuple(value)
        elif key == "code":
            value = ErrorCode(value)
        kwargs["sender" if key == "from" else key] = value
    return cls(**kwargs)


def _decoder(vector: dict[str, Any]) -> Any:
    return decode_client if vector["direction"] == "client" else decode_server


def test_every_frame_type_has_a_valid_vector() -> None:
    assert {v["op"] for v in VALID} == set(FRAMES)


@pytest.mark.parametrize("vector", VALID, ids=[f"{v['file']}: {v['name']}" for v in VALID])
def test_valid_vector_round_trips_byte_for_byte(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    body = _from_json(vector["body"])
    assert msgpack.unpackb(data, raw=False) == [vector["op"], vector["rid"], body]

    frame = _decoder(vector)(data)

    assert frame == _expected_frame(vector)
    assert frame.rid == vector["rid"]
    assert encode(frame) == data
    if isinstance(frame, Msg):
        assert msg_body(frame) == body


@pytest.mark.parametrize("vector", INVALID, ids=[f"{v['file']}: {v['name']}" for v in INVALID])
def test_invalid_vector_fails_with_the_recorded_error(vector: dict[str, Any]) -> None:
    error = vector["error"]
    expected = FrameError if error["kind"] == "frame" else RequestError

    with pytest.raises((FrameError, RequestError)) as info:
        _decoder(vector)(bytes.fromhex(vector["hex"]))

    assert type(info.value) is expected
    assert info.value.code == error["code"]
    assert info.value.rid == error["rid"]
    assert getattr(info.value, "close_code", None) == error["close_code"]


def test_every_hex_example_in_the_spec_is_a_golden_vector() -> None:
    spec = (VECTORS.parent / "SPEC.md").read_text(encoding="utf-8")
    hexes = {vector["hex"] for vector in ALL}
    examples = []
    for block in re.findall(r"```\n(.*?)```", spec, flags=re.DOTALL):
        lines = block.strip().splitlines()
        wrapped = list(itertools.takewhile(lambda line: re.fullmatch("[0-9a-f]+", line), lines))
        if wrapped:
            examples.append("".join(wrapped))

    assert len(examples) >= 12
    assert [example for example in examples if example not in hexes] == []
