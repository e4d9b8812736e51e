"""Events carry a forwarded message's origin (added within event version 1)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from sandcat.bus import BadEvent, Event, decode_event, encode_event
from sandcat.store.messages import Origin, StoredMessage

FORWARD = StoredMessage(
    "g:x",
    3,
    "m3",
    "u2",
    "d",
    "c3",
    1,
    msgpack.packb({"text": "hi"}),
    5,
    forward=Origin("d:u1:u2", 9, "u1"),
)


def test_forward_round_trips() -> None:
    event = Event("o", FORWARD, ("u1", "u2"))
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize("bad", [["d:a:b", 1], ["d:a:b", "1", "a"], [1, 1, "a"], "x", ["c", 1, 2]])
def test_a_malformed_forward_is_a_bad_event(bad: Any) -> None:
    raw = msgpack.unpackb(encode_event(Event("o", FORWARD, ("u1",))))
    raw["forward"] = bad
    with pytest.raises(BadEvent, match="forward"):
        decode_event(msgpack.packb(raw))
