"""ObjectCount: decoding tells its caller how many maps and arrays a frame held."""

from __future__ import annotations

import msgpack
import pytest

from sandcat.protocol import FrameError, ObjectCount, Op, Ping, decode_client


def _frame(body: object) -> bytes:
    data: bytes = msgpack.packb([Op.PING, 1, body])
    return data


@pytest.mark.parametrize(
    ("body", "objects"),
    [
        ({}, 2),  # the envelope array and the body map
        ({"pad": "x" * 1000}, 2),  # strings cost nothing
        ({"pad": [{}] * 3}, 6),
        ({"pad": [[1, [2, {"a": None}]]]}, 6),
    ],
)
def test_decoding_counts_maps_and_arrays(body: object, objects: int) -> None:
    count = ObjectCount()
    assert isinstance(decode_client(_frame(body), count=count), Ping)
    assert count.objects == objects


def test_counts_add_up_and_include_refused_frames() -> None:
    count = ObjectCount()
    decode_client(_frame({}), count=count)
    deep: object = {}
    for _ in range(20):
        deep = [deep]
    with pytest.raises(FrameError, match="nesting deeper than 16"):
        decode_client(_frame({"pad": deep}), count=count)
    # 2 before; then the envelope, the body and the 14 arrays within depth 16.
    assert count.objects == 2 + 16


def test_a_frame_of_65000_empty_maps_counts_each() -> None:
    count = ObjectCount()
    frame = _frame({"pad": [{}] * 65_000})
    assert len(frame) <= 65536
    decode_client(frame, count=count)
    assert count.objects == 65_003
