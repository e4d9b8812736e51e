"""Identifiers: opaque ids, conversation ids, and their parsing at the edge.

protocol/SPEC.md §3: ids are 1-64 characters of ``[A-Za-z0-9_-]``, so ``:`` can
separate them inside cids. Direct cids are ``d:min(a,b):max(a,b)``; group cids
are ``g:<group id>``. The cid value type and its builders are the protocol's
(``sandcat.protocol.Cid``); this module adds the edge's errors.
"""

from __future__ import annotations

import base64
import re
import secrets

from sandcat.errors import BadRequest
from sandcat.protocol import Cid, direct_cid, group_cid
from sandcat.protocol import parse_cid as parse_conversation

__all__ = [
    "Cid",
    "direct_cid",
    "group_cid",
    "is_id",
    "new_id",
    "new_ids",
    "parse_cid",
    "parse_id",
]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: 16 random url-safe characters = 96 bits: collision-free in practice.
_NEW_ID_BYTES = 12


def new_id() -> str:
    """A fresh random opaque id."""
    return secrets.token_urlsafe(_NEW_ID_BYTES)


#: The id alphabet in ASCII order: a fixed-width number written in it sorts as the number.
_ORDERED = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
#: Characters of a message id's time prefix: 48 bits of milliseconds (until year 10889).
_TIME_CHARS = 8


def new_ids(count: int, now_ms: int) -> list[str]:
    """``count`` fresh message ids: ``m``, ``now_ms`` in 8 characters that sort
    by time, then 16 random ones (96 bits, as ``new_id``), from one read of the
    system's random source. (The ``m`` keeps them from starting with ``-``, which
    today's times would: a command line takes such an id for an option.)

    Ids that grow with time are appended at the right edge of the messages'
    ``mid`` index, so a batch's ids share its last pages instead of each
    dirtying a random page of the index (and of the WAL: issue 14).
    """
    prefix = "m" + "".join(_ORDERED[(now_ms >> shift) & 63] for shift in range(42, -1, -6))
    raw = secrets.token_bytes(_NEW_ID_BYTES * count)
    return [
        prefix + base64.urlsafe_b64encode(raw[i : i + _NEW_ID_BYTES]).decode("ascii")
        for i in range(0, len(raw), _NEW_ID_BYTES)
    ]


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def parse_id(value: object, *, field: str) -> str:
    if not is_id(value):
        raise BadRequest(f"{field}: must be 1-64 characters of [A-Za-z0-9_-]", field=field)
    assert isinstance(value, str)
    return value


def parse_cid(value: object, *, field: str = "cid") -> Cid:
    """The conversation id ``value`` names, parsed once at the edge; ``BadRequest``
    naming ``field`` if it is not one."""
    try:
        return parse_conversation(value)
    except ValueError:
        raise BadRequest(f"{field}: not a conversation id", field=field) from None
