"""The event codec: round trip, and every malformed record refused with BadEvent."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from sandcat.bus import BadEvent, Event, decode_event, encode_event
from sandcat.bus.event import MAX_EVENT_BYTES
from sandcat.store.messages import StoredMessage

MESSAGE = StoredMessage(
    cid="g:x",
    seq=7,
    mid="m1",
    sender="u1",
    device="phone",
    cmid="c1",
    kind=1,
    body=msgpack.packb({"text": "hi"}),
    ts=1_700_000_000_000,
    reply_to=3,
    mentions=("u2",),
)
EVENT = Event(origin="host-1-ab", message=MESSAGE, members=("u1", "u2", "u3"))


def _fields() -> dict[str, Any]:
    decoded: dict[str, Any] = msgpack.unpackb(encode_event(EVENT))
    return decoded


def test_round_trip() -> None:
    assert decode_event(encode_event(EVENT)) == EVENT
    plain = Event("o", StoredMessage("d:a:b", 1, "m", "a", "d", "c", 2, b"\xc0", 5), ("a", "b"))
    assert decode_event(encode_event(plain)) == plain
    assert plain.key == ("d:a:b", 1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"v": 2}, "version"),
        ({"seq": "7"}, "'seq' is not a int"),
        ({"seq": True}, "'seq' is not a int"),
        ({"seq": 0}, "seq must be positive"),
        ({"cid": None}, "'cid' is not a str"),
        ({"body": "text"}, "'body' is not a bytes"),
        ({"reply_to": "x"}, "'reply_to' is not a int"),
        ({"mentions": "u2"}, "'mentions' is not a list of strings"),
        ({"members": [1, 2]}, "'members' is not a list of strings"),
        ({"members": None}, "'members' is not a list of strings"),
        ({"origin": 5}, "'origin' is not a str"),
    ],
)
def test_wrong_fields_are_refused(change: dict[str, object], match: str) -> None:
    fields = _fields() | change
    with pytest.raises(BadEvent, match=match):
        decode_event(msgpack.packb(fields, use_bin_type=True))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x93\x01\x02\x03",  # an array, not a map
        msgpack.packb({1: 2}),  # a non-string key
        msgpack.packb(msgpack.ExtType(5, b"x")),
        encode_event(EVENT) + b"\x00",  # trailing bytes
        b"\x91" * 2000 + b"\x90",  # nesting past the unpacker's stack
    ],
)
def test_records_that_are_not_events_are_refused(data: bytes) -> None:
    with pytest.raises(BadEvent):
        decode_event(data)


def test_an_oversized_record_is_refused_before_decoding() -> None:
    with pytest.raises(BadEvent, match="over"):
        decode_event(b"\x80" + b"\x00" * MAX_EVENT_BYTES)
