"""U+0000 and lone surrogates are refused in every string field (SPEC.md "Strings").

msgpack's strict UTF-8 keeps surrogates out of frames, so a NUL is what arrives
over the wire; frames built in code (and JSON bodies) can hold both.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from sandcat.protocol import (
    Auth,
    Call,
    ContentError,
    Err,
    ErrorCode,
    GoAway,
    Kind,
    Op,
    RequestError,
    Send,
    decode_client,
    is_clean_text,
    validate_content,
)

UNCLEAN = ["a\x00b", "\x00", "a\ud800", "\udfff"]


@pytest.mark.parametrize("text", UNCLEAN)
def test_unclean_text_is_recognised(text: str) -> None:
    assert not is_clean_text(text)


@pytest.mark.parametrize("text", ["", "plain", "é🎉", "\x01\t\n", "\ufffd"])
def test_clean_text_is_recognised(text: str) -> None:
    assert is_clean_text(text)


def test_a_cmid_with_nul_over_the_wire_is_a_bad_request_naming_it() -> None:
    frame = msgpack.packb([Op.SEND, 7, {"cid": "g:x", "cmid": "c\x00", "kind": 1, "body": {}}])
    with pytest.raises(RequestError, match="cmid: must not contain U\\+0000") as caught:
        decode_client(frame)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    assert caught.value.rid == 7


@pytest.mark.parametrize("text", UNCLEAN)
def test_frame_fields_refuse_unclean_text(text: str) -> None:
    with pytest.raises(ValueError, match="cmid: must not contain"):
        Send(rid=1, cid="g:x", cmid=text, kind=1, body={"text": "hi"})
    with pytest.raises(ValueError, match="token: must not contain"):
        Auth(rid=1, token=text)
    with pytest.raises(ValueError, match="message: must not contain"):
        Err(rid=1, code=ErrorCode.INTERNAL, message=text)
    with pytest.raises(ValueError, match="reason: must not contain"):
        GoAway(reason=text, reconnect_after_ms=1)


@pytest.mark.parametrize("text", UNCLEAN)
@pytest.mark.parametrize(
    "fields",
    [
        lambda t: {"action": "offer", "call": "k", "sdp": t},
        lambda t: {"action": "candidate", "call": "k", "candidate": {"candidate": t}},
        lambda t: {
            "action": "candidate",
            "call": "k",
            "candidate": {"candidate": "", "sdp_mid": t},
        },
    ],
)
def test_call_signals_refuse_unclean_text(text: str, fields: Any) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        Call(rid=1, **fields(text))


@pytest.mark.parametrize("text", UNCLEAN)
@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (Kind.TEXT, lambda t: {"text": t}),
        (Kind.EMOJI, lambda t: {"emoji": t}),
        (Kind.LOCATION, lambda t: {"lat": 1, "lon": 2, "name": t}),
    ],
)
def test_content_refuses_unclean_text(text: str, kind: Kind, body: Any) -> None:
    with pytest.raises(ContentError, match="must not contain U\\+0000"):
        validate_content(kind, body(text))
