"""SQLite's ``Dialect`` for the portable stores (``store.sql``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgpack

from sandcat.store.sql._tx import Dialect


def _mentions_in(mentions: Sequence[str] | None) -> bytes | None:
    return None if mentions is None else msgpack.packb(list(mentions))


def _mentions_out(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(msgpack.unpackb(value))


DIALECT = Dialect(
    name="sqlite",
    for_update="",
    collate="",
    is_not="IS NOT",
    # json_each keeps the statement parameterised for any list length.
    member_of="IN (SELECT value FROM json_each(?))",
    list_param=json.dumps,
    time_in=lambda ms: ms,
    time_out=int,
    mentions_in=_mentions_in,
    mentions_out=_mentions_out,
    greatest="max",
    json_in=lambda data: json.dumps(data, separators=(",", ":")),
    json_out=json.loads,
    publish=lambda conn, message, members: None,
)
