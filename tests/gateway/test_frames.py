"""The hand-written client frame parser (gateway/frames.py), rule by rule.

Every rule wsproto enforced for the gateway is now the parser's own: each has
a case here, sizes at max-1, max and max+1. Well-formed frames come from
wsproto's client (an independent encoder); broken ones are built by hand.
"""

from __future__ import annotations

import os
import struct

import pytest
from wsproto.frame_protocol import FrameProtocol

from sandcat.gateway.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FrameReader,
    close_frame,
    control_frame,
    unmask,
)

_MAX = 1000


def _frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length_form: int | None = None,
) -> bytes:
    """A client frame built by hand; ``length_form`` forces 126 or 127 (too long a form)."""
    size = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    form = length_form or (size if size < 126 else 126 if size < 65536 else 127)
    if form == 126:
        header = bytes((first, mask_bit | 126)) + struct.pack("!H", size)
    elif form == 127:
        header = bytes((first, mask_bit | 127)) + struct.pack("!Q", size)
    else:
        header = bytes((first, mask_bit | size))
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + unmask(payload, key)


def _client() -> FrameProtocol:
    return FrameProtocol(client=True, extensions=[])


def _fed(*chunks: bytes, limit: int = _MAX) -> FrameReader:
    reader = FrameReader(limit)
    for chunk in chunks:
        reader.feed(chunk)
    return reader


def _error(*chunks: bytes, limit: int = _MAX) -> tuple[int, str]:
    reader = _fed(*chunks, limit=limit)
    assert reader.error is not None, list(reader.messages)
    assert reader.done
    return reader.error.code, reader.error.reason


# -- what a client sends ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70_000])
def test_wsprotos_client_frames_of_every_length_form_read_back(size: int) -> None:
    payload = os.urandom(size)
    reader = _fed(bytes(_client().send_data(payload)), limit=100_000)
    assert list(reader.messages) == [payload]
    assert reader.error is None
    assert reader.closed is None


def test_text_frames_come_back_as_str() -> None:
    reader = _fed(bytes(_client().send_data("héllo ✓")))
    assert list(reader.messages) == ["héllo ✓"]


def test_frames_split_anywhere_and_coalesced_read_back_whole_and_in_order() -> None:
    client = _client()
    payloads = [os.urandom(n) for n in (3, 200, 0, 900)]
    stream = b"".join(bytes(client.send_data(p)) for p in payloads)
    reader = FrameReader(_MAX)
    for index in range(len(stream)):  # one byte at a time
        reader.feed(stream[index : index + 1])
    assert list(reader.messages) == payloads
    reader = _fed(stream[:7], stream[7:300], stream[300:])
    assert list(reader.messages) == payloads


def test_fragmented_messages_join_and_controls_may_interleave() -> None:
    client = _client()
    stream = (
        bytes(client.send_data(b"ab", fin=False))
        + bytes(client.ping(b"p"))
        + bytes(client.send_data(b"cd", fin=False))
        + bytes(client.send_data(b"ef", fin=True))
        + bytes(client.send_data("x", fin=False))
        + bytes(client.send_data("y", fin=True))
    )
    reader = FrameReader(_MAX)
    assert reader.feed(stream) == [(PING, b"p")]
    assert list(reader.messages) == [b"abcdef", "xy"]


def test_pings_and_pongs_are_returned_in_order_with_their_payloads() -> None:
    client = _client()
    reader = FrameReader(_MAX)
    controls = reader.feed(bytes(client.ping(b"a" * 125)) + bytes(client.pong(b"")))
    assert controls == [(PING, b"a" * 125), (PONG, b"")]


# -- sizes: max-1, max, max+1 ---------------------------------------------------------


@pytest.mark.parametrize("size", [_MAX - 1, _MAX])
def test_a_message_up_to_the_limit_is_read(size: int) -> None:
    assert list(_fed(_frame(BINARY, b"x" * size)).messages) == [b"x" * size]


def test_a_frame_over_the_limit_is_refused_from_its_header_with_1009() -> None:
    header_only = _frame(BINARY, b"x" * (_MAX + 1))[:8]  # 2 + 2 length + 4 key, no payload
    assert _error(header_only) == (1009, f"message larger than {_MAX} bytes")


@pytest.mark.parametrize("last", [_MAX - 1 - 600, _MAX - 600])
def test_fragments_up_to_the_limit_are_read(last: int) -> None:
    reader = _fed(_frame(BINARY, b"a" * 600, fin=False), _frame(CONTINUATION, b"b" * last))
    assert reader.error is None
    assert list(reader.messages) == [b"a" * 600 + b"b" * last]


def test_fragments_over_the_limit_together_are_refused_with_1009() -> None:
    first = _frame(BINARY, b"a" * 600, fin=False)
    assert _error(first, _frame(CONTINUATION, b"b" * (_MAX + 1 - 600)))[0] == 1009


def test_the_limit_counts_each_message_afresh() -> None:
    frame = _frame(BINARY, b"x" * _MAX)
    assert len(_fed(frame, frame, frame).messages) == 3


@pytest.mark.parametrize(("size", "ok"), [(124, True), (125, True), (126, False)])
def test_control_frames_carry_at_most_125_bytes(size: int, ok: bool) -> None:
    reader = _fed(_frame(PING, b"p" * size))
    if ok:
        assert reader.error is None
    else:
        assert _error(_frame(PING, b"p" * size)) == (1002, "Control frame with payload len > 125")


# -- framing rules --------------------------------------------------------------------


def test_an_unmasked_client_frame_is_refused_with_1002() -> None:
    assert _error(_frame(BINARY, b"hi", masked=False)) == (
        1002,
        "server received unexpected unmasked frame",
    )


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_a_reserved_bit_is_refused_with_1002(rsv: int) -> None:
    assert _error(_frame(BINARY, b"hi", rsv=rsv)) == (1002, "Reserved bit set unexpectedly")


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_an_undefined_opcode_is_refused_with_1002(opcode: int) -> None:
    assert _error(_frame(opcode, b""))[0] == 1002


def test_a_fragmented_control_frame_is_refused_with_1002() -> None:
    assert _error(_frame(PING, b"", fin=False)) == (
        1002,
        "Invalid attempt to fragment control frame",
    )


def test_lengths_must_use_their_shortest_form() -> None:
    assert _error(_frame(BINARY, b"x" * 125, length_form=126))[0] == 1002
    assert _error(_frame(BINARY, b"x" * 65535, length_form=127), limit=100_000)[0] == 1002
    top_bit = bytes((0x82, 0xFF)) + struct.pack("!Q", 1 << 63) + b"\0" * 4
    assert _error(top_bit) == (1002, "8-byte payload length with non-zero MSB")


def test_a_continuation_needs_a_message_in_progress() -> None:
    assert _error(_frame(CONTINUATION, b"x")) == (1002, "unexpected CONTINUATION")


def test_a_new_message_may_not_start_inside_a_fragmented_one() -> None:
    code, reason = _error(_frame(BINARY, b"a", fin=False), _frame(TEXT, b"b"))
    assert (code, reason) == (1002, "expected CONTINUATION, got 0x1")


def test_messages_before_a_broken_rule_are_kept_and_nothing_after_it_is_read() -> None:
    good = _frame(BINARY, b"kept")
    reader = _fed(good + _frame(BINARY, b"x", rsv=0x40) + good)
    assert list(reader.messages) == [b"kept"]
    assert reader.feed(good) == []
    assert list(reader.messages) == [b"kept"]


# -- UTF-8 ----------------------------------------------------------------------------


def test_a_text_frame_that_is_not_utf8_is_refused_with_1007() -> None:
    assert _error(_frame(TEXT, b"ok \xff"))[0] == 1007


def test_a_fragmented_text_fails_at_the_first_bad_fragment() -> None:
    reader = _fed(_frame(TEXT, b"ok", fin=False), _frame(CONTINUATION, b"\xc0\xaf", fin=False))
    assert reader.error is not None
    assert reader.error.code == 1007


def test_a_character_split_across_fragments_is_whole_again() -> None:
    snowman = "☃".encode()
    reader = _fed(
        _frame(TEXT, snowman[:1], fin=False),
        _frame(CONTINUATION, snowman[1:2], fin=False),
        _frame(CONTINUATION, snowman[2:]),
    )
    assert list(reader.messages) == ["☃"]


def test_a_text_ending_inside_a_character_is_refused_with_1007() -> None:
    snowman = "☃".encode()
    assert _error(_frame(TEXT, snowman[:1], fin=False), _frame(CONTINUATION, snowman[1:2]))[0] == (
        1007
    )


# -- close frames ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "closed"),
    [
        (b"", (1005, "")),
        (struct.pack("!H", 1000), (1000, "")),
        (struct.pack("!H", 1001) + "bye ✓".encode(), (1001, "bye ✓")),
        (struct.pack("!H", 1013), (1013, "")),
        (struct.pack("!H", 3000), (3000, "")),
        (struct.pack("!H", 4999), (4999, "")),
    ],
)
def test_a_valid_close_ends_reading_with_its_code_and_reason(
    payload: bytes, closed: tuple[int, str]
) -> None:
    reader = _fed(_frame(CLOSE, payload) + _frame(BINARY, b"after"))
    assert reader.closed == closed
    assert reader.done
    assert list(reader.messages) == []
    assert reader.feed(_frame(BINARY, b"later")) == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x03", 1002),  # one byte
        (struct.pack("!H", 999), 1002),
        (struct.pack("!H", 5000), 1002),
        (struct.pack("!H", 1004), 1002),  # reserved
        (struct.pack("!H", 1005), 1002),  # local only
        (struct.pack("!H", 1006), 1002),
        (struct.pack("!H", 1015), 1002),
        (struct.pack("!H", 1016), 1002),
        (struct.pack("!H", 2999), 1002),
        (struct.pack("!H", 1000) + b"\xff", 1007),  # reason not UTF-8
    ],
)
def test_a_broken_close_is_refused(payload: bytes, code: int) -> None:
    assert _error(_frame(CLOSE, payload))[0] == code


# -- what the server writes -----------------------------------------------------------


def _client_reads(data: bytes) -> list[object]:
    client = _client()
    client.receive_bytes(data)
    return list(client.received_frames())


def test_close_frames_read_back_and_long_reasons_are_cut_at_a_character() -> None:
    (frame,) = _client_reads(close_frame(1009, "é" * 100))
    code, reason = frame.payload  # type: ignore[attr-defined]
    assert code == 1009
    assert reason == "é" * 61
    (frame,) = _client_reads(close_frame(1006, "gone"))
    assert frame.payload == (1000, "gone")  # type: ignore[attr-defined]
    (frame,) = _client_reads(close_frame(None))
    assert frame.payload == (1005, "")  # type: ignore[attr-defined]


def test_pings_and_pongs_read_back() -> None:
    ping, pong = _client_reads(control_frame(PING, b"x") + control_frame(PONG, b""))
    assert (ping.opcode, ping.payload) == (PING, b"x")  # type: ignore[attr-defined]
    assert (pong.opcode, pong.payload) == (PONG, b"")  # type: ignore[attr-defined]


def test_unmask_is_its_own_inverse() -> None:
    payload, key = os.urandom(1001), os.urandom(4)
    assert unmask(payload, key) != payload
    assert unmask(unmask(payload, key), key) == payload
    assert unmask(b"", key) == b""


def test_a_long_frame_whose_8_byte_length_arrives_in_pieces_reads_back() -> None:
    payload = os.urandom(70_000)
    frame = bytes(_client().send_data(payload))
    reader = _fed(frame[:5], frame[5:9], frame[9:], limit=100_000)
    assert list(reader.messages) == [payload]


# -- how TCP splits the bytes never changes the outcome ---------------------------------

_KEY = b"\x37\xfa\x21\x3d"


def _masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame with a fixed masking key, so every run feeds the same bytes."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = bytes((first, 0x80 | 126)) + struct.pack("!H", size)
    else:
        header = bytes((first, 0x80 | 127)) + struct.pack("!Q", size)
    return header + _KEY + unmask(payload, _KEY)


_SNOWMAN = "☃".encode()
#: Streams whose outcome must not depend on where they are cut: every kind of ending
#: (none, the peer's close, each broken rule) after messages, fragments and controls.
_STREAMS = {
    # The Autobahn cases that failed under load: 6.6.11 and 6.22.6 (valid UTF-8,
    # echoed, then the client's close) and 6.21.2 (invalid, failed with 1007).
    "6.6.11 valid then close": _masked(TEXT, bytes.fromhex("cebae1bdb9cf83cebcceb5"))
    + _masked(CLOSE, struct.pack("!H", 1000)),
    "6.22.6 valid then close": _masked(TEXT, bytes.fromhex("f0afbfbf"))
    + _masked(CLOSE, struct.pack("!H", 1000)),
    "6.21.2 not UTF-8": _masked(TEXT, bytes.fromhex("eda080edbfbf"))
    + _masked(CLOSE, struct.pack("!H", 1000)),
    "whole frames of both short length forms": _masked(BINARY, b"a")
    + _masked(TEXT, "é".encode() * 100)
    + _masked(BINARY, bytes(range(256)) * 3),
    "fragments with pings between, a character split across them": _masked(
        TEXT, b"a" + _SNOWMAN[:1], fin=False
    )
    + _masked(PING, b"p1")
    + _masked(CONTINUATION, _SNOWMAN[1:2], fin=False)
    + _masked(PONG, b"")
    + _masked(CONTINUATION, _SNOWMAN[2:] + b"z")
    + _masked(CLOSE, b""),
    "a fragment not UTF-8 after a ping": _masked(TEXT, b"ok", fin=False)
    + _masked(PING, b"p")
    + _masked(CONTINUATION, b"\xc0\xaf", fin=False)
    + _masked(PING, b"never"),
    "a text ending inside a character": _masked(TEXT, _SNOWMAN[:2], fin=False)
    + _masked(CONTINUATION, b""),
    "a close reason not UTF-8": _masked(BINARY, b"kept")
    + _masked(CLOSE, struct.pack("!H", 1000) + b"\xff"),
    "a message over the limit after one at it": _masked(BINARY, b"x" * _MAX)
    + _masked(PING, b"p")
    + _masked(BINARY, b"y", fin=False)
    + _masked(CONTINUATION, b"y" * _MAX),
    "a reserved bit after a ping": _masked(PING, b"p") + bytes((0xC2, 0x80)) + _KEY,
    "an unexpected continuation": _masked(BINARY, b"m") + _masked(CONTINUATION, b"c"),
    "data after the close is not read": _masked(BINARY, b"m")
    + _masked(CLOSE, struct.pack("!H", 1001) + b"bye")
    + _masked(BINARY, b"after"),
    "a frame cut short by the end": _masked(BINARY, b"whole") + _masked(BINARY, b"cut")[:-1],
}


def _outcome(chunks: list[bytes]) -> tuple[object, ...]:
    """Everything a reader reports after ``chunks``, fed one by one."""
    reader = FrameReader(_MAX)
    controls = [control for chunk in chunks for control in reader.feed(chunk)]
    error = None if reader.error is None else (reader.error.code, reader.error.reason)
    return list(reader.messages), controls, reader.closed, error


@pytest.mark.parametrize("name", list(_STREAMS))
def test_the_outcome_is_the_same_wherever_tcp_splits_the_bytes(name: str) -> None:
    stream = _STREAMS[name]
    whole = _outcome([stream])
    for cut in range(1, len(stream)):
        assert _outcome([stream[:cut], stream[cut:]]) == whole, (name, cut)
    for first in range(1, min(len(stream), 40)):  # three pieces, for the short headers
        for second in range(first + 1, len(stream)):
            chunks = [stream[:first], stream[first:second], stream[second:]]
            assert _outcome(chunks) == whole, (name, first, second)
    assert _outcome([stream[i : i + 1] for i in range(len(stream))]) == whole, name
    assert whole[2] is not None or whole[3] is not None or name.startswith(("whole", "a frame"))


def test_the_streams_end_as_their_names_say() -> None:
    outcomes = {name: _outcome([stream]) for name, stream in _STREAMS.items()}
    assert outcomes["6.6.11 valid then close"] == (
        [bytes.fromhex("cebae1bdb9cf83cebcceb5").decode()],
        [],
        (1000, ""),
        None,
    )
    assert outcomes["6.22.6 valid then close"][0] == ["\U0002ffff"]
    assert outcomes["6.21.2 not UTF-8"][:3] == ([], [], None)
    assert outcomes["6.21.2 not UTF-8"][3][0] == 1007  # type: ignore[index]
    assert outcomes["fragments with pings between, a character split across them"] == (
        ["a☃z"],
        [(PING, b"p1"), (PONG, b"")],
        (1005, ""),
        None,
    )
    assert outcomes["a fragment not UTF-8 after a ping"][1:3] == ([(PING, b"p")], None)
    assert outcomes["a fragment not UTF-8 after a ping"][3][0] == 1007  # type: ignore[index]
    assert outcomes["a text ending inside a character"][3][0] == 1007  # type: ignore[index]
    assert outcomes["a close reason not UTF-8"][0] == [b"kept"]
    assert outcomes["a close reason not UTF-8"][3][0] == 1007  # type: ignore[index]
    assert outcomes["a message over the limit after one at it"] == (
        [b"x" * _MAX],
        [(PING, b"p")],
        None,
        (1009, f"message larger than {_MAX} bytes"),
    )
    assert outcomes["a reserved bit after a ping"][1:] == (
        [(PING, b"p")],
        None,
        (1002, "Reserved bit set unexpectedly"),
    )
    assert outcomes["an unexpected continuation"] == (
        [b"m"],
        [],
        None,
        (1002, "unexpected CONTINUATION"),
    )
    assert outcomes["data after the close is not read"] == ([b"m"], [], (1001, "bye"), None)
    assert outcomes["whole frames of both short length forms"] == (
        [b"a", "é" * 100, bytes(range(256)) * 3],
        [],
        None,
        None,
    )
    assert outcomes["a frame cut short by the end"] == ([b"whole"], [], None, None)
