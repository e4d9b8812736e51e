"""validate_content: the body shapes of the defined kinds, and opaque custom kinds."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandcat.protocol import (
    CUSTOM_KIND_MIN,
    SERVER_KINDS,
    ContentError,
    ErrorCode,
    Kind,
    Limits,
    validate_content,
)

FILE_ID = "f01HZX"
VALID: list[tuple[Kind, dict[str, Any]]] = [
    (Kind.TEXT, {"text": "hi"}),
    (Kind.TEXT, {"text": "é" * 8192}),
    (
        Kind.IMAGE,
        {"file": FILE_ID, "mime": "image/png", "size": 1, "width": 1, "height": 2},
    ),
    (
        Kind.IMAGE,
        {
            "file": FILE_ID,
            "mime": "image/jpeg",
            "size": 0,
            "width": 0,
            "height": 0,
            "thumb": "t1",
            "name": "cat.jpg",
        },
    ),
    (Kind.FILE, {"file": FILE_ID, "mime": "application/pdf", "size": 10, "name": "a.pdf"}),
    (Kind.VOICE, {"file": FILE_ID, "mime": "audio/ogg", "size": 10, "duration_ms": 3000}),
    (
        Kind.VIDEO,
        {
            "file": FILE_ID,
            "mime": "video/mp4",
            "size": 10,
            "duration_ms": 1,
            "width": 640,
            "height": 480,
            "thumb": "t",
        },
    ),
    (Kind.EMOJI, {"emoji": "🎉"}),
    (Kind.LOCATION, {"lat": 52.52, "lon": -180, "name": "Berlin", "address": "Mitte"}),
    (Kind.LOCATION, {"lat": -90, "lon": 13.4}),
    (Kind.CONTACT, {"user": "u-42"}),
    (
        Kind.CONTACT,
        {"user": "u-42", "username": "carol", "display_name": "Carol C.", "avatar": "a1"},
    ),
]


@pytest.mark.parametrize(("kind", "body"), VALID)
def test_valid_bodies_pass(kind: Kind, body: dict[str, Any]) -> None:
    validate_content(kind, body)


IMAGE = {"file": "f", "mime": "image/png", "size": 1, "width": 1, "height": 1}
FILE = {"file": "f", "mime": "text/plain", "size": 1, "name": "n"}
VOICE = {"file": "f", "mime": "audio/ogg", "size": 1, "duration_ms": 1}
IMAGE = {"file": "f", "mime": "image/png", "size": 1, "width": 1, "height": 1}
FILE = {"file": "f", "mime": "text/plain", "size": 1, "name": "n"}
VOICE = {"file": "f", "mime": "audio/ogg", "size": 1, "duration_ms": 1}
INVALID: list[tuple[int, object, str]] = [
    (0, {"text": "x"}, "kind: unknown kind 0"),
    (13, {}, "kind: unknown kind 13"),
    (999, {}, "kind: unknown kind 999"),
    (Kind.TEXT, "hi", "body: must be a map"),
    (Kind.TEXT, {}, "body.text: required"),
    (Kind.TEXT, {"text": ""}, "body.text: must be a str of 1-16384 UTF-8 bytes"),
    (Kind.TEXT, {"text": "é" * 8193}, "body.text: must be a str"),
    (Kind.TEXT, {"text": b"hi"}, "body.text: must be a str"),
    (Kind.TEXT, {"text": "hi", "html": "<b>"}, "body.html: not allowed for kind text"),
    (Kind.IMAGE, {**IMAGE, "file": "a/b"}, "body.file: must be an id"),
    (Kind.IMAGE, {**IMAGE, "mime": "png"}, "body.mime: must be a media type"),
    (Kind.IMAGE, {**IMAGE, "mime": 1}, "body.mime: must be a media type"),
    (Kind.IMAGE, {**IMAGE, "size": -1}, "body.size: must be an unsigned int < 2**53"),
    (Kind.IMAGE, {**IMAGE, "width": True}, "body.width: must be an unsigned int < 2**31"),
    (Kind.IMAGE, {**IMAGE, "thumb": ""}, "body.thumb: must be an id"),
    (Kind.FILE, {**FILE, "name": ""}, "body.name: must be a str of 1-255 chars"),
    (Kind.FILE, {**FILE, "name": "n" * 256}, "body.name: must be a str of 1-255 chars"),
    (Kind.FILE, {"file": "f", "mime": "text/plain", "size": 1}, "body.name: required"),
    (Kind.VOICE, {**VOICE, "duration_ms": 2**32}, "body.duration_ms: must be an unsigned int"),
    (Kind.EMOJI, {"emoji": ""}, "body.emoji:"),
    (Kind.EMOJI, {"emoji": "x" * 65}, "body.emoji:"),
    (Kind.LOCATION, {"lat": 90.5, "lon": 0}, "body.lat:"),
    (Kind.LOCATION, {"lat": 0, "lon": float("nan")}, "body.lon:"),
    (Kind.LOCATION, {"lat": 0, "lon": float("inf")}, "body.lon:"),
    (Kind.LOCATION, {"lat": True, "lon": 0}, "body.lat:"),
    (Kind.LOCATION, {"lat": "0", "lon": 0}, "body.lat:"),
    (Kind.CONTACT, {}, "body.user: required"),
    (Kind.CONTACT, {"user": "a:b"}, "body.user: must be an id"),
    (Kind.CONTACT, {"user": "u", "display_name": ""}, "body.display_name: must be a str of 1-64"),
    (Kind.CONTACT, {"user": "u", "username": "a\nb"}, "body.username: must be a str of 1-64"),
    (Kind.CONTACT, {"user": "u", "avatar": 7}, "body.avatar: must be an id"),
    (Kind.CONTACT, {"user": "u", "phone": "1"}, "body.phone: not allowed for kind contact"),
    (Kind.RECALL, {"seq": 1}, "kind: recall messages are sent by the server only"),
    (Kind.EDIT, {"seq": 1, "body": {}}, "kind: edit messages are sent by the server only"),
    (Kind.CALL_LOG, {}, "kind: call_log messages are sent by the server only"),
    (Kind.SYSTEM, {"event": "x"}, "kind: system messages are sent by the server only"),
]


@pytest.mark.parametrize(("kind", "body", "message"), INVALID)
def test_invalid_bodies_raise_content_error(kind: int, body: object, message: str) -> None:
    with pytest.raises(ContentError, match="^" + re.escape(message)) as info:
        validate_content(kind, body)
    assert info.value.code == ErrorCode.BAD_REQUEST
    assert isinstance(info.value, ValueError)


def test_server_kinds_are_accepted_from_the_server() -> None:
    assert Kind.CALL_LOG in SERVER_KINDS
    call = {"call": "c1", "media": "video", "outcome": "missed", "duration_ms": 0}
    validate_content(Kind.CALL_LOG, call, server_authored=True)
    validate_content(
        Kind.SYSTEM, {"event": "group.renamed", "data": {"name": "x"}}, server_authored=True
    )
    validate_content(Kind.SYSTEM, {"event": "member_joined"}, server_authored=True)
    with pytest.raises(ContentError, match=r"^body.outcome: must be one of"):
        validate_content(Kind.CALL_LOG, {**call, "outcome": "lost"}, server_authored=True)
    with pytest.raises(ContentError, match=r"^body.event:"):
        validate_content(Kind.SYSTEM, {"event": "Bad Event"}, server_authored=True)
    with pytest.raises(ContentError, match=r"^body.data: must be a map"):
        validate_content(Kind.SYSTEM, {"event": "e", "data": []}, server_authored=True)


@pytest.mark.parametrize("body", [None, b"\x00" * 100, {"ct": b"\xff", "n": [1, 2.5]}, "x"])
def test_custom_kinds_are_opaque(body: object) -> None:
    validate_content(CUSTOM_KIND_MIN, body)
    validate_content(2**31 - 1, body)


def test_custom_body_is_bounded_by_its_encoded_size() -> None:
    limits = Limits(max_custom_body_bytes=10)
    validate_content(1000, b"\x00" * 8, limits)  # bin8 header: 2 + 8 bytes
    with pytest.raises(ContentError, match=r"^body: 11 bytes of msgpack exceeds"):
        validate_content(1000, b"\x00" * 9, limits)


def test_custom_body_msgpack_cannot_encode_is_refused() -> None:
    with pytest.raises(ContentError, match=r"^body: not msgpack-encodable"):
        validate_content(1000, {1.5j})


def test_text_limit_follows_limits() -> None:
    validate_content(Kind.TEXT, {"text": "abc"}, Limits(max_text_bytes=3))
    with pytest.raises(ContentError, match="1-3 UTF-8 bytes"):
        validate_content(Kind.TEXT, {"text": "abcd"}, Limits(max_text_bytes=3))


def test_recall_and_edit_events_are_server_kinds() -> None:
    assert {Kind.RECALL, Kind.EDIT} <= SERVER_KINDS
    validate_content(Kind.RECALL, {"seq": 7}, server_authored=True)
    validate_content(Kind.EDIT, {"seq": 7, "body": {"text": "x"}}, server_authored=True)
    with pytest.raises(ContentError, match=r"^body.seq: must be an unsigned int"):
        validate_content(Kind.RECALL, {"seq": -1}, server_authored=True)
    with pytest.raises(ContentError, match=r"^body.body: must be a map"):
        validate_content(Kind.EDIT, {"seq": 1, "body": "x"}, server_authored=True)
