"""Content kinds and the shape of a SEND body for each (SPEC.md "Content kinds").

The server reads message bodies only to check the kinds defined here. Custom
kinds (>= `CUSTOM_KIND_MIN`) are opaque: any msgpack value within a size
limit, which is also the seam for end-to-end encrypted bodies.

Bodies of defined kinds are closed maps: a key not listed is an error, so a
client cannot store data other clients would not expect. (Frame bodies are
the opposite: unknown keys there are ignored.)
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from typing import Final

import msgpack

from ._errors import ContentError
from ._fields import is_clean_text
from ._ids import is_valid_id
from ._limits import DEFAULT_LIMITS, Limits

__all__ = ["CUSTOM_KIND_MIN", "SERVER_KINDS", "Kind", "validate_content"]


class Kind(enum.IntEnum):
    """Content kinds defined by the protocol. Kinds 13-999 are reserved."""

    TEXT = 1
    IMAGE = 2
    FILE = 3
    VOICE = 4
    VIDEO = 5
    EMOJI = 6
    LOCATION = 7
    CALL_LOG = 8
    SYSTEM = 9
    CONTACT = 10
    RECALL = 11
    EDIT = 12


# Kinds from here up are application-defined and opaque to the server.
CUSTOM_KIND_MIN: Final = 1000

# Kinds only the server authors (call logs, group notices, and the recall and
# edit events it writes for RECALL and EDIT): a client that could send them
# could forge history.
SERVER_KINDS: Final = frozenset({Kind.CALL_LOG, Kind.SYSTEM, Kind.RECALL, Kind.EDIT})

# A value check returns None if the value fits, else the rule it broke.
_Check = Callable[[object, Limits], str | None]

_MIME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9!#$&^_.+-]{1,63}")
_EVENT_RE: Final = re.compile(r"[a-z0-9_.]{1,64}")
_MAX_NAME_CHARS: Final = 255  # a file name on every common file system
_MAX_EMOJI_BYTES: Final = 64  # one grapheme cluster or a ":short_code:"
_MAX_LABEL_CHARS: Final = 64  # a username or display name on a contact card


def _uint(bound: int) -> _Check:
    def check(value: object, _limits: Limits) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < bound:
            return None
        return f"must be an unsigned int < 2**{bound.bit_length() - 1}"

    return check


_UNCLEAN: Final = "must not contain U+0000 or lone surrogates"


def _text(value: object, limits: Limits) -> str | None:
    if not (
        isinstance(value, str)
        and 1 <= len(value.encode("utf-8", "surrogatepass")) <= limits.max_text_bytes
    ):
        return f"must be a str of 1-{limits.max_text_bytes} UTF-8 bytes"
    return None if is_clean_text(value) else _UNCLEAN


def _name(value: object, _limits: Limits) -> str | None:
    if not (isinstance(value, str) and 1 <= len(value) <= _MAX_NAME_CHARS):
        return f"must be a str of 1-{_MAX_NAME_CHARS} chars"
    return None if is_clean_text(value) else _UNCLEAN


def _emoji(value: object, _limits: Limits) -> str | None:
    if not (
        isinstance(value, str)
        and 1 <= len(value.encode("utf-8", "surrogatepass")) <= _MAX_EMOJI_BYTES
    ):
        return f"must be a str of 1-{_MAX_EMOJI_BYTES} UTF-8 bytes"
    return None if is_clean_text(value) else _UNCLEAN


def _id(value: object, _limits: Limits) -> str | None:
    return None if is_valid_id(value) else "must be an id (1-64 chars of [A-Za-z0-9_-])"


def _mime(value: object, _limits: Limits) -> str | None:
    if isinstance(value, str) and _MIME_RE.fullmatch(value):
        return None
    return 'must be a media type like "image/png"'


def _degrees(bound: float) -> _Check:
    def check(value: object, _limits: Limits) -> str | None:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and -bound <= value <= bound
        ):
            return None
        return f"must be a number of degrees in [-{bound:g}, {bound:g}]"

    return check


def _one_of(*choices: str) -> _Check:
    def check(value: object, _limits: Limits) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _event(value: object, _limits: Limits) -> str | None:
    if isinstance(value, str) and _EVENT_RE.fullmatch(value):
        return None
    return "must be a str of 1-64 chars of [a-z0-9_.]"


def _map(value: object, _limits: Limits) -> str | None:
    return None if isinstance(value, dict) else "must be a map"


def _label(value: object, _limits: Limits) -> str | None:
    if isinstance(value, str) and 1 <= len(value) <= _MAX_LABEL_CHARS and value.isprintable():
        return None
    return f"must be a str of 1-{_MAX_LABEL_CHARS} printable chars"


_SIZE = _uint(Limits.max_seq)
_SEQ = _SIZE
_PIXELS = _uint(2**31)
_DURATION = _uint(Limits.max_duration_ms)

# kind -> {key: (check, required)}
_SCHEMAS: Final[Mapping[int, Mapping[str, tuple[_Check, bool]]]] = {
    Kind.TEXT: {"text": (_text, True)},
    Kind.IMAGE: {
        "file": (_id, True),
        "mime": (_mime, True),
        "size": (_SIZE, True),
        "width": (_PIXELS, True),
        "height": (_PIXELS, True),
        "thumb": (_id, False),
        "name": (_name, False),
    },
    Kind.FILE: {
        "file": (_id, True),
        "mime": (_mime, True),
        "size": (_SIZE, True),
        "name": (_name, True),
    },
    Kind.VOICE: {
        "file": (_id, True),
        "mime": (_mime, True),
        "size": (_SIZE, True),
        "duration_ms": (_DURATION, True),
    },
    Kind.VIDEO: {
        "file": (_id, True),
        "mime": (_mime, True),
        "size": (_SIZE, True),
        "duration_ms": (_DURATION, True),
        "width": (_PIXELS, True),
        "height": (_PIXELS, True),
        "thumb": (_id, False),
    },
    Kind.EMOJI: {"emoji": (_emoji, True)},
    Kind.LOCATION: {
        "lat": (_degrees(90), True),
        "lon": (_degrees(180), True),
        "name": (_name, False),
        "address": (_name, False),
    },
    Kind.CALL_LOG: {
        "call": (_id, True),
        "media": (_one_of("audio", "video"), True),
        "outcome": (_one_of("completed", "missed", "declined", "cancelled", "failed"), True),
        "duration_ms": (_DURATION, True),
    },
    Kind.SYSTEM: {"event": (_event, True), "data": (_map, False)},
    Kind.CONTACT: {
        "user": (_id, True),
        "username": (_label, False),
        "display_name": (_label, False),
        "avatar": (_id, False),
    },
    Kind.RECALL: {"seq": (_SEQ, True)},
    Kind.EDIT: {"seq": (_SEQ, True), "body": (_map, True)},
}


def validate_content(
    kind: int, body: object, limits: Limits = DEFAULT_LIMITS, *, server_authored: bool = False
) -> None:
    """Check that *body* is a valid message body of content *kind*.

    Args:
        kind: the SEND's kind (already a valid uint by frame validation).
        body: the SEND's body.
        limits: bounds on text and custom bodies.
        server_authored: True when the server itself authors the message;
            only then are `SERVER_KINDS` accepted.

    Raises:
        ContentError: the body does not fit the kind, the kind is unknown, or
            it is a server kind sent by a client; the message names the key.
    """
    if kind >= CUSTOM_KIND_MIN:
        _check_custom(body, limits)
        return
    schema = _SCHEMAS.get(kind)
    if schema is None:
        raise ContentError(f"kind: unknown kind {kind}")
    if kind in SERVER_KINDS and not server_authored:
        raise ContentError(f"kind: {Kind(kind).name.lower()} messages are sent by the server only")
    if not isinstance(body, dict):
        raise ContentError(f"body: must be a map for kind {Kind(kind).name.lower()}")
    for key in body:
        if key not in schema:
            raise ContentError(f"body.{key}: not allowed for kind {Kind(kind).name.lower()}")
    for key, (check, required) in schema.items():
        if key not in body:
            if required:
                raise ContentError(f"body.{key}: required")
            continue
        problem = check(body[key], limits)
        if problem is not None:
            raise ContentError(f"body.{key}: {problem}")


def _check_custom(body: object, limits: Limits) -> None:
    try:
        size = len(msgpack.packb(body, use_bin_type=True))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ContentError(f"body: not msgpack-encodable: {exc}") from exc
    if size > limits.max_custom_body_bytes:
        raise ContentError(
            f"body: {size} bytes of msgpack exceeds max_custom_body_bytes "
            f"{limits.max_custom_body_bytes}"
        )
