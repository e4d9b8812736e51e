"""An event on the bus: one committed message, who committed it, who receives it.

The wire form is a msgpack map (``v`` is the format version). Decoding checks
every field's type and size: a record on the topic that is not an event this
version understands raises ``BadEvent``, and the consumer skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from sandcat.store.messages import Origin, StoredMessage

#: The event format this code writes and reads.
VERSION = 1
#: Largest encoded event accepted from the bus (a message body plus its members).
MAX_EVENT_BYTES = 4 * 1024 * 1024
_MAX_MEMBERS = 1_000_000


class BadEvent(ValueError):
    """A record on the bus that is not a valid event."""


@dataclass(frozen=True, slots=True)
class Event:
    #: The instance that committed the message (and already delivered it locally).
    origin: str
    message: StoredMessage
    #: Every member of the conversation when the message was committed.
    members: tuple[str, ...]

    @property
    def key(self) -> tuple[str, int]:
        """What consumers deduplicate by (G6)."""
        return self.message.cid, self.message.seq


def encode_event(event: Event) -> bytes:
    m = event.message
    data = {
        "v": VERSION,
        "origin": event.origin,
        "cid": m.cid,
        "seq": m.seq,
        "mid": m.mid,
        "sender": m.sender,
        "device": m.device,
        "cmid": m.cmid,
        "kind": m.kind,
        "body": m.body,
        "ts": m.ts,
        "reply_to": m.reply_to,
        "mentions": None if m.mentions is None else list(m.mentions),
        "members": list(event.members),
    }
    if m.forward is not None:
        # Added within version 1: older readers ignore the key.
        data["forward"] = [m.forward.cid, m.forward.seq, m.forward.sender]
    packed: bytes = msgpack.packb(data, use_bin_type=True)
    return packed


def _field(data: dict[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadEvent(f"event field {name!r} is not a {kind.__name__}")
    return value


def _strings(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadEvent(f"event field {name!r} is not a list of strings")
    return tuple(value)


def _origin(value: object) -> Origin | None:
    if value is None:
        return None
    if not (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], str)
    ):
        raise BadEvent("event field 'forward' is not [cid, seq, from]")
    return Origin(value[0], value[1], value[2])


def decode_event(data: bytes) -> Event:
    """The event encoded in ``data``; ``BadEvent`` if it is not one."""
    if len(data) > MAX_EVENT_BYTES:
        raise BadEvent(f"event of {len(data)} bytes is over {MAX_EVENT_BYTES}")
    try:
        raw = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_array_len=_MAX_MEMBERS,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.StackError) as exc:
        raise BadEvent(f"event is not msgpack: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadEvent("event is not a map")
    if raw.get("v") != VERSION:
        raise BadEvent(f"event version {raw.get('v')!r} is not {VERSION}")
    mentions = raw.get("mentions")
    message = StoredMessage(
        cid=_field(raw, "cid", str),
        seq=_field(raw, "seq", int),
        mid=_field(raw, "mid", str),
        sender=_field(raw, "sender", str),
        device=_field(raw, "device", str),
        cmid=_field(raw, "cmid", str),
        kind=_field(raw, "kind", int),
        body=_field(raw, "body", bytes),
        ts=_field(raw, "ts", int),
        reply_to=_field(raw, "reply_to", int, optional=True),
        mentions=None if mentions is None else _strings(mentions, "mentions"),
        forward=_origin(raw.get("forward")),
    )
    if message.seq < 1:
        raise BadEvent("event seq must be positive")
    return Event(
        origin=_field(raw, "origin", str),
        message=message,
        members=_strings(raw.get("members"), "members"),
    )
