"""``encode_msg`` writes exactly the bytes ``encode(Msg(...))`` writes.

The server's MSG pushes skip building and checking a ``Msg`` (issue 14); a
client must not be able to tell: every optional field, present or absent,
gives the same bytes as the checked frame.
"""

from __future__ import annotations

import dataclasses

import pytest

from sandcat.protocol import Msg, encode, encode_msg

_REQUIRED: dict[str, object] = {
    "cid": "d:alice:bob",
    "seq": 7,
    "mid": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
    "sender": "alice",
    "kind": 1,
    "body": {"text": "hi ✓"},
    "ts": 1_700_000_000_000,
}
_OPTIONAL: dict[str, object] = {
    "cmid": "c-1",
    "device": "phone",
    "reply_to": 3,
    "mentions": ("bob", "cy"),
    "forward": {"cid": "d:bob:cy", "seq": 2, "from": "cy"},
    "edited_at": 1_700_000_000_500,
    "recalled": True,
}


@pytest.mark.parametrize("present", range(2 ** len(_OPTIONAL)))
def test_every_combination_of_optional_fields_encodes_like_the_checked_frame(
    present: int,
) -> None:
    fields = dict(_REQUIRED)
    for index, (name, value) in enumerate(_OPTIONAL.items()):
        if present >> index & 1:
            fields[name] = value
    assert encode_msg(**fields) == encode(Msg(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [None, b"\x00bytes", [1, "two"], {}])
def test_any_body_encodes_like_the_checked_frame(body: object) -> None:
    fields = {**_REQUIRED, "body": body}
    assert encode_msg(**fields) == encode(Msg(**fields))  # type: ignore[arg-type]


def test_a_body_msgpack_cannot_encode_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not msgpack-encodable"):
        encode_msg(**{**_REQUIRED, "body": object()})  # type: ignore[arg-type]


def test_the_cases_cover_every_msg_field() -> None:
    # A new Msg field must be added to encode_msg, and to the cases above.
    assert {field.name for field in dataclasses.fields(Msg)} == {*_REQUIRED, *_OPTIONAL}
