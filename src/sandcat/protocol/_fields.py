"""The frame type and the field checks every frame module shares.

Each check raises ``ValueError("<field>: <rule>")``; the frame dataclasses
(`_frames`, `_timeline_frames`, `_conversation_frames`, `_signals`) call them
from ``__post_init__``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

from ._ids import is_valid_cid, is_valid_id
from ._limits import Limits

__all__ = ["MENTION_ALL", "Op", "is_clean_text"]


class Op(enum.IntEnum):
    """The frame type, element 0 of every frame."""

    HELLO = 1
    OK = 2
    ERR = 3
    PING = 4
    AUTH = 5
    SEND = 10
    PULL = 11
    SYNC = 12
    READ = 13
    INBOX_PULL = 14
    INBOX_ACK = 15
    RECALL = 16
    EDIT = 17
    HISTORY = 18
    HIDE = 19
    MSG = 20
    READ_STATE = 21
    NOTIFY = 22
    CONV_STATE = 24
    CONV_SET = 30
    READERS = 31
    # Ephemeral signals (_signals.py): 40 and 42 are pushes, 40 also a request.
    TYPING = 40
    PRESENCE_SET = 41
    PRESENCE = 42
    CALL = 43
    CALL_EVENT = 44
    GOAWAY = 126


# -- field checks: each raises ValueError("<field>: <rule>") --------------------


def _is_uint(value: object, bound: int) -> bool:
    # bool is an int subclass, but a msgpack true is not a number.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < bound


def _check_uint(field: str, value: object, bound: int = Limits.max_seq) -> None:
    if not _is_uint(value, bound):
        raise ValueError(f"{field}: must be an unsigned int < {_power(bound)}")


def _check_request_rid(value: object) -> None:
    # Replies to a rid of 0 would be indistinguishable from pushes.
    if not _is_uint(value, Limits.max_rid) or value == 0:
        raise ValueError("rid: must be an int of 1 to 2**32-1")


def _check_id(field: str, value: object) -> None:
    if not is_valid_id(value):
        raise ValueError(f"{field}: must be an id (1-64 chars of [A-Za-z0-9_-])")


def _check_cid(value: object) -> None:
    if not is_valid_cid(value):
        raise ValueError('cid: must be "d:<id>:<id>" (ids in ascending order) or "g:<id>"')


#: U+0000 and surrogates. msgpack's strict UTF-8 keeps lone surrogates out of
#: frames, but JSON's "\ud800" reaches str; PostgreSQL text holds neither, and
#: NUL ends a string in C clients and logs (SPEC.md "Strings").
_UNCLEAN = re.compile("[\x00\ud800-\udfff]")


def is_clean_text(value: str) -> bool:
    """True unless ``value`` holds U+0000 or a surrogate code point."""
    return _UNCLEAN.search(value) is None


def _check_clean(field: str, value: str) -> None:
    if not is_clean_text(value):
        raise ValueError(f"{field}: must not contain U+0000 or lone surrogates")


def _check_str(field: str, value: object, *, min_chars: int, max_chars: int) -> None:
    if not (isinstance(value, str) and min_chars <= len(value) <= max_chars):
        raise ValueError(f"{field}: must be a str of {min_chars}-{max_chars} chars")
    _check_clean(field, value)


def _check_label(field: str, value: object) -> None:
    if not (
        isinstance(value, str) and 1 <= len(value) <= Limits.max_label_chars and value.isprintable()
    ):
        raise ValueError(f"{field}: must be a str of 1-{Limits.max_label_chars} printable chars")


def _check_cmid(value: object) -> None:
    if not (
        isinstance(value, str)
        and 1 <= len(value.encode("utf-8", "surrogatepass")) <= Limits.max_cmid_bytes
    ):
        raise ValueError(f"cmid: must be a str of 1-{Limits.max_cmid_bytes} UTF-8 bytes")
    _check_clean("cmid", value)


#: The mention of everyone in a group: not an id (ids have no "@"), so never a user.
MENTION_ALL = "@all"


def _check_mentions(value: object) -> None:
    if value is None:
        return
    if not (
        isinstance(value, tuple)
        and len(value) <= Limits.max_mentions
        and all(is_valid_id(user) or user == MENTION_ALL for user in value)
    ):
        raise ValueError(
            f'mentions: must be a list of at most {Limits.max_mentions} user ids or "@all"'
        )


def _check_ref(field: str, value: object, keys: tuple[str, ...]) -> None:
    """A message reference: a map of exactly ``keys`` (cid, seq, and from in MSG)."""
    problem = f"{field}: must be a map of {', '.join(keys)}"
    if not (isinstance(value, Mapping) and set(value) == set(keys)):
        raise ValueError(problem)
    if not (is_valid_cid(value["cid"]) and _is_uint(value["seq"], Limits.max_seq)):
        raise ValueError(problem)
    if "from" in keys and not is_valid_id(value["from"]):
        raise ValueError(problem)


def _power(bound: int) -> str:
    return f"2**{bound.bit_length() - 1}"
