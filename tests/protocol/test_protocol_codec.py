"""The codec: envelope checks, field mapping, and encoding details."""

from __future__ import annotations

import subprocess
import sys
from types import MappingProxyType

import msgpack
import pytest

from sandcat.protocol import (
    DEFAULT_LIMITS,
    CloseCode,
    Err,
    ErrorCode,
    FrameError,
    GoAway,
    Hello,
    Limits,
    Msg,
    Ok,
    Ping,
    Pull,
    ReadState,
    RequestError,
    Send,
    Sync,
    decode_client,
    decode_server,
    encode,
    msg_body,
)


def pack(value: object) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_importing_the_protocol_does_not_import_trio() -> None:
    code = "import sys, sandcat.protocol; assert 'trio' not in sys.modules, 'trio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- size --------------------------------------------------------------------


def test_oversized_frame_closes_with_1009_before_decoding() -> None:
    limits = Limits(max_frame_bytes=8)
    # Not even valid msgpack: the size check comes first.
    with pytest.raises(FrameError) as info:
        decode_client(b"\xc1" * 9, limits)
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG
    assert info.value.code == ErrorCode.TOO_LARGE
    assert info.value.rid is None


def test_frame_of_exactly_max_frame_bytes_is_accepted() -> None:
    data = pack([4, 1, {}])
    assert decode_client(data, Limits(max_frame_bytes=len(data))) == Ping(rid=1)


# -- envelope ------------------------------------------------------------------


def test_declared_length_beyond_the_data_is_a_bad_frame_not_an_allocation() -> None:
    # array32 claiming 2**32-1 elements, followed by nothing.
    with pytest.raises(FrameError) as info:
        decode_client(b"\xdd\xff\xff\xff\xff")
    assert info.value.close_code == CloseCode.INVALID_PAYLOAD


def test_nesting_far_beyond_the_limit_is_a_bad_frame() -> None:
    data = b"\x91" * 5000 + b"\xc0"
    with pytest.raises(FrameError) as info:
        decode_client(data)
    assert info.value.code == ErrorCode.BAD_FRAME


@pytest.mark.parametrize("max_depth", [3, 16])
def test_max_depth_counts_the_envelope_as_level_one(max_depth: int) -> None:
    limits = Limits(max_depth=max_depth)
    send = {"cid": "g:g", "cmid": "c", "kind": 1000}
    at_limit = pack([10, 1, {**send, "body": nested(max_depth - 2)}])
    too_deep = pack([10, 1, {**send, "body": nested(max_depth - 1)}])

    assert isinstance(decode_client(at_limit, limits), Send)
    with pytest.raises(FrameError, match=f"nesting deeper than {max_depth}") as info:
        decode_client(too_deep, limits)
    assert info.value.rid == 1


def test_non_str_key_deep_inside_the_body_is_a_bad_frame_with_the_rid() -> None:
    data = pack([10, 7, {"cid": "g:g", "cmid": "c", "kind": 1000, "body": [{1: 2}]}])
    with pytest.raises(FrameError, match="map keys must be str") as info:
        decode_client(data)
    assert info.value.rid == 7


def test_map_used_as_a_map_key_is_a_bad_frame() -> None:
    # {{"a": 1}: 2} cannot be built in Python; write it by hand.
    data = b"\x93\x04\x05\x81\x81\xa1a\x01\x02"
    with pytest.raises(FrameError, match="map keys must be str") as info:
        decode_client(data)
    assert info.value.rid == 5


def test_op_that_is_a_float_is_a_bad_frame() -> None:
    with pytest.raises(FrameError, match="op:") as info:
        decode_client(pack([4.0, 3, {}]))
    assert info.value.rid == 3


# -- body ------------------------------------------------------------------------


def test_unknown_body_keys_are_ignored() -> None:
    data = pack([11, 5, {"cid": "g:g", "after": 3, "future_flag": True, "x": [1, {}]}])
    assert decode_client(data) == Pull(rid=5, cid="g:g", after=3)


def test_nil_for_an_optional_field_means_absent() -> None:
    data = pack([12, 6, {"since": None}])
    assert decode_client(data) == Sync(rid=6)


def test_nil_for_a_required_field_is_a_bad_request() -> None:
    with pytest.raises(RequestError, match=r"^seq: ") as info:
        decode_client(pack([13, 8, {"cid": "g:g", "seq": None}]))
    assert info.value.code == ErrorCode.BAD_REQUEST
    assert info.value.rid == 8


def test_pull_without_limit_gets_the_default() -> None:
    frame = decode_client(pack([11, 1, {"cid": "g:g", "after": 0}]))
    assert isinstance(frame, Pull)
    assert frame.limit == DEFAULT_LIMITS.default_pull_limit == 50


def test_hello_token_may_be_absent() -> None:
    frame = decode_client(pack([1, 1, {"device": "d1", "platform": "web"}]))
    assert frame == Hello(rid=1, token=None, device="d1", platform="web")


def test_missing_field_is_named() -> None:
    with pytest.raises(RequestError, match=r"^cmid: required$"):
        decode_client(pack([10, 1, {"cid": "g:g", "kind": 1, "body": {}}]))


@pytest.mark.parametrize(
    ("mentions", "ok"),
    [(["alice", "bob"], True), ([], True), ("alice", False), ([1], False), (["a:b"], False)],
)
def test_mentions_must_be_a_list_of_ids(mentions: object, ok: bool) -> None:
    data = pack([10, 1, {"cid": "g:g", "cmid": "c", "kind": 1, "body": {}, "mentions": mentions}])
    if ok:
        frame = decode_client(data)
        assert isinstance(frame, Send)
        assert frame.mentions == tuple(mentions)  # type: ignore[arg-type]
    else:
        with pytest.raises(RequestError, match=r"^mentions: "):
            decode_client(data)


@pytest.mark.parametrize("code", [7, "Forbidden", "teapot", ["forbidden"]])
def test_err_with_an_unknown_code_is_a_bad_request(code: object) -> None:
    with pytest.raises(RequestError, match=r"^code: "):
        decode_server(pack([3, 1, {"code": code, "message": "m"}]))


def test_ok_body_is_the_whole_map() -> None:
    body = {"server_time": 5, "nested": {"a": [1, b"\x00"]}}
    assert decode_server(pack([2, 9, body])) == Ok(rid=9, body=body)


@pytest.mark.parametrize(("op", "rid"), [(20, 1), (21, 2), (126, 3), (2, 0), (3, 0)])
def test_server_frame_with_the_wrong_kind_of_rid_is_a_bad_frame(op: int, rid: int) -> None:
    with pytest.raises(FrameError, match="must carry rid") as info:
        decode_server(pack([op, rid, {}]))
    assert info.value.rid == (rid or None)


def test_server_pushes_decode_with_rid_0() -> None:
    assert decode_server(pack([21, 0, {"cid": "g:g", "user": "u", "seq": 1}])) == ReadState(
        cid="g:g", user="u", seq=1
    )
    goaway = decode_server(pack([126, 0, {"reason": "", "reconnect_after_ms": 0}]))
    assert goaway == GoAway(reason="", reconnect_after_ms=0)
    assert goaway.rid == 0


def test_unknown_op_from_a_server_keeps_its_rid() -> None:
    with pytest.raises(RequestError) as info:
        decode_server(pack([77, 12, {}]))
    assert (info.value.code, info.value.rid) == (ErrorCode.UNKNOWN_OP, 12)


# -- encoding ----------------------------------------------------------------------


def test_encode_omits_none_fields_and_keeps_declaration_order() -> None:
    frame = Send(rid=3, cid="g:g", cmid="c", kind=1, body={"text": "t"}, mentions=("a",))
    assert msgpack.unpackb(encode(frame)) == [
        10,
        3,
        {"cid": "g:g", "cmid": "c", "kind": 1, "body": {"text": "t"}, "mentions": ["a"]},
    ]
    assert list(msgpack.unpackb(encode(frame))[2]) == ["cid", "cmid", "kind", "body", "mentions"]


def test_encode_writes_enums_as_plain_values() -> None:
    frame = Err(rid=1, code=ErrorCode.CONFLICT, message="m")
    assert encode(frame) == pack([3, 1, {"code": "conflict", "message": "m"}])


def test_encode_accepts_any_mapping_as_ok_body() -> None:
    frame = Ok(rid=1, body=MappingProxyType({"a": 1}))
    assert encode(frame) == pack([2, 1, {"a": 1}])


@pytest.mark.parametrize("body", [object(), {"n": 2**64}, {"s": {1, 2}}])
def test_encode_refuses_a_body_msgpack_cannot_hold(body: object) -> None:
    with pytest.raises(ValueError, match="not msgpack-encodable"):
        encode(Send(rid=1, cid="g:g", cmid="c", kind=1000, body=body))


def test_msg_body_is_the_push_body_with_from() -> None:
    msg = Msg(
        cid="d:a:b",
        seq=4,
        mid="m",
        sender="a",
        kind=1,
        body={"text": "hi"},
        ts=10,
        cmid="c",
        device="d",
        mentions=("b",),
    )
    body = msg_body(msg)
    assert body == {
        "cid": "d:a:b",
        "seq": 4,
        "mid": "m",
        "from": "a",
        "kind": 1,
        "body": {"text": "hi"},
        "ts": 10,
        "cmid": "c",
        "device": "d",
        "mentions": ["b"],
    }
    assert msgpack.unpackb(encode(msg)) == [20, 0, body]
    # Embedded in a PULL reply it encodes to the same map.
    reply = encode(Ok(rid=2, body={"msgs": [body], "more": False}))
    assert msgpack.unpackb(reply)[2]["msgs"][0] == body
