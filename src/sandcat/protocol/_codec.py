"""Bytes <-> frames: the msgpack envelope, its limits, and field mapping.

Decoding runs in three stages, and the stage that fails decides the error
(SPEC.md "Frame envelope"):

1. size: more than ``max_frame_bytes`` -> `FrameError` 1009, nothing decoded;
2. envelope: not msgpack, ext types, non-str keys, too deep, not
   ``[op, rid, body]`` -> `FrameError` 1007 (with the rid if one was readable);
3. body: unknown op -> `RequestError` ``unknown_op``; a missing or invalid
   field -> `RequestError` ``bad_request`` naming the field.

Body keys the frame type does not define are ignored, so a newer peer can add
optional fields without breaking an older one.

Decoding costs time in proportion to the maps and arrays in a frame (a 64 KiB
frame can hold 65,000 empty maps), not to its bytes; a caller that budgets
that cost passes an `ObjectCount` to be told how many there were.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar

import msgpack

from ._errors import CloseCode, ErrorCode, FrameError, RequestError
from ._fields import _is_uint
from ._frames import (
    Auth,
    ClientFrame,
    ConvSet,
    ConvState,
    Edit,
    Err,
    GoAway,
    Hello,
    Hide,
    History,
    InboxAck,
    InboxPull,
    Msg,
    Notify,
    Ok,
    Op,
    Ping,
    Pull,
    Read,
    Readers,
    ReadState,
    Recall,
    Send,
    ServerFrame,
    Sync,
)
from ._limits import DEFAULT_LIMITS, Limits
from ._signals import Call, CallEvent, Presence, PresenceSet, Typing, TypingEvent

__all__ = ["ObjectCount", "decode_client", "decode_server", "encode", "msg_body", "notice_body"]

_Frame = TypeVar("_Frame", ClientFrame, ServerFrame)

_CLIENT_FRAMES: Final[Mapping[int, type[ClientFrame]]] = {
    cls.op: cls
    for cls in (
        Hello,
        Ping,
        Auth,
        Send,
        Pull,
        Sync,
        Read,
        InboxPull,
        InboxAck,
        Recall,
        Edit,
        History,
        Hide,
    )
} | {cls.op: cls for cls in (Typing, PresenceSet, Call, ConvSet, Readers)}
_SERVER_FRAMES: Final[Mapping[int, type[ServerFrame]]] = {
    cls.op: cls for cls in (Ok, Err, Msg, ReadState, Notify, GoAway)
} | {cls.op: cls for cls in (TypingEvent, Presence, CallEvent, ConvState)}
_PUSHES: Final = frozenset({Op.MSG, Op.READ_STATE, Op.NOTIFY, Op.GOAWAY}) | {
    Op.TYPING,
    Op.PRESENCE,
    Op.CALL_EVENT,
    Op.CONV_STATE,
}

# Python names that are keywords or builtins on the wire.
_WIRE_KEYS: Final[Mapping[str, str]] = {"sender": "from"}


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    key: str
    required: bool  # a body without it is refused
    nullable: bool  # None is valid; passed explicitly when the key is absent


def _layout(cls: type[ClientFrame | ServerFrame]) -> tuple[_Field, ...]:
    # A field is optional on the wire when None is a valid value for it
    # (Hello.token has no default, but may be left out of the body).
    hints = typing.get_type_hints(cls)
    layout = []
    for field in dataclasses.fields(cls):
        if field.name == "rid":
            continue
        nullable = type(None) in typing.get_args(hints[field.name])
        layout.append(
            _Field(
                attr=field.name,
                key=_WIRE_KEYS.get(field.name, field.name),
                required=field.default is dataclasses.MISSING and not nullable,
                nullable=nullable,
            )
        )
    return tuple(layout)


_WITH_RID: Final = frozenset(
    cls
    for cls in (*_CLIENT_FRAMES.values(), *_SERVER_FRAMES.values())
    if any(field.name == "rid" for field in dataclasses.fields(cls))
)
_MSG: Final = Op.MSG.value
_OK: Final = Op.OK.value
_LAYOUTS: Final = {
    cls: _layout(cls) for cls in (*_CLIENT_FRAMES.values(), *_SERVER_FRAMES.values())
}


# -- encoding ------------------------------------------------------------------


def encode(frame: ClientFrame | ServerFrame) -> bytes:
    """Serialise *frame* as the msgpack array ``[op, rid, body]``.

    Body keys follow the frame's field order; optional fields that are None
    are omitted (a ``body`` of None is written as nil). The result is not
    checked against any `Limits`.

    Raises:
        ValueError: if a body value (``Send.body``, ``Msg.body``, ``Ok.body``)
            holds something msgpack cannot encode.
    """
    body = dict(frame.body) if isinstance(frame, Ok) else _body(frame)
    try:
        data: bytes = msgpack.packb([frame.op.value, frame.rid, body], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{type(frame).__name__} is not msgpack-encodable: {exc}") from exc
    return data


def encode_msg(
    *,
    cid: str,
    seq: int,
    mid: str,
    sender: str,
    kind: int,
    body: object,
    ts: int,
    cmid: str | None = None,
    device: str | None = None,
    reply_to: int | None = None,
    mentions: tuple[str, ...] | None = None,
    forward: Mapping[str, object] | None = None,
    edited_at: int | None = None,
    recalled: bool | None = None,
) -> bytes:
    """The bytes `encode` writes for ``Msg`` with these fields, without building
    or checking the frame.

    For the server's own pushes, sent for every message: their fields were
    written by the store or checked when the SEND was decoded, so checking
    them again (``Msg.__post_init__``) and walking the frame's layout cost
    time and catch nothing. Same keys, order and omissions as `encode`.
    """
    out: dict[str, object] = {
        "cid": cid,
        "seq": seq,
        "mid": mid,
        "from": sender,
        "kind": kind,
        "body": body,
        "ts": ts,
    }
    if cmid is not None:
        out["cmid"] = cmid
    if device is not None:
        out["device"] = device
    if reply_to is not None:
        out["reply_to"] = reply_to
    if mentions is not None:
        out["mentions"] = list(mentions)
    if forward is not None:
        out["forward"] = forward
    if edited_at is not None:
        out["edited_at"] = edited_at
    if recalled is not None:
        out["recalled"] = recalled
    try:
        data: bytes = msgpack.packb([_MSG, 0, out], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"Msg is not msgpack-encodable: {exc}") from exc
    return data


def encode_ack(rid: int, cid: str, seq: int, mid: str, ts: int) -> bytes:
    """The bytes `encode` writes for a SEND's ``Ok`` (cid, seq, mid, ts), without
    building or checking the frame.

    Sent once per message: the rid was checked when the SEND was decoded and
    the rest was written by the store, so ``Ok.__post_init__`` catches nothing
    here. Every value is a str or an int, which msgpack always encodes.
    """
    data: bytes = msgpack.packb(
        [_OK, rid, {"cid": cid, "seq": seq, "mid": mid, "ts": ts}], use_bin_type=True
    )
    return data


def msg_body(msg: Msg) -> dict[str, object]:
    """The body map of a MSG push, as PULL and SYNC replies embed it.

    Equal to the body `encode` writes for the push, so a message looks the
    same whether it was pushed or pulled.
    """
    return _body(msg)


def notice_body(notice: Notify) -> dict[str, object]:
    """The body map of a NOTIFY push, as inbox pulls embed it."""
    return _body(notice)


def _body(frame: ClientFrame | ServerFrame) -> dict[str, object]:
    body: dict[str, object] = {}
    for field in _LAYOUTS[type(frame)]:
        value = getattr(frame, field.attr)
        # Only optional fields are left out; a body of nil is still a body.
        if value is not None or not field.nullable:
            # mentions are tuples in frames (immutable) and lists on the wire.
            body[field.key] = list(value) if isinstance(value, tuple) else value
    return body


# -- decoding ------------------------------------------------------------------


class ObjectCount:
    """The maps and arrays decoding has met (added to by each decode it is passed to)."""

    __slots__ = ("objects",)

    def __init__(self) -> None:
        self.objects = 0


def decode_client(
    data: bytes, limits: Limits = DEFAULT_LIMITS, count: ObjectCount | None = None
) -> ClientFrame:
    """Decode one frame sent by a client.

    ``count``, if given, is told the maps and arrays the frame held (whenever
    it was valid msgpack, also if the frame is then refused).

    Raises:
        FrameError: *data* is not a frame; close the connection.
        RequestError: unknown (or server-only) op, or an invalid field;
            answer ERR and keep the connection.
    """
    op, rid, body = _envelope(data, limits, count)
    if rid == 0:
        raise _bad_frame("rid: must not be 0 in a request (0 marks server pushes)", rid=None)
    cls = _CLIENT_FRAMES.get(op)
    if cls is None:
        raise RequestError(ErrorCode.UNKNOWN_OP, f"unknown op {op}", rid=rid)
    return _build(cls, rid, body)


def decode_server(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ServerFrame:
    """Decode one frame sent by a server (for client SDKs).

    Raises:
        FrameError: *data* is not a frame, or a push carries a rid other
            than 0, or a reply carries rid 0.
        RequestError: unknown op (a client should skip the frame: newer
            servers may push new types) or an invalid field.
    """
    op, rid, body = _envelope(data, limits)
    cls = _SERVER_FRAMES.get(op)
    if cls is None:
        raise RequestError(ErrorCode.UNKNOWN_OP, f"unknown op {op}", rid=rid)
    if (op in _PUSHES) != (rid == 0):
        expected = "0" if op in _PUSHES else "> 0"
        raise _bad_frame(f"rid: {Op(op).name} must carry rid {expected}", rid or None)
    return _build(cls, rid, body)


def _envelope(
    data: bytes, limits: Limits, count: ObjectCount | None = None
) -> tuple[int, int, dict[str, object]]:
    if len(data) > limits.max_frame_bytes:
        raise FrameError(
            ErrorCode.TOO_LARGE,
            f"frame of {len(data)} bytes exceeds max_frame_bytes {limits.max_frame_bytes}",
            close_code=CloseCode.MESSAGE_TOO_BIG,
            rid=None,
        )
    try:
        # unpackb caps every declared length at len(data), so a forged
        # header cannot make it allocate more than the frame holds.
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=False, object_pairs_hook=_map_or_marker
        )
    except ValueError as exc:  # every msgpack decode error is a ValueError
        raise _bad_frame(f"not a msgpack value: {exc}", rid=None) from exc
    rid = _readable_rid(value)
    problem, objects = _problem(value, limits.max_depth)
    if count is not None:
        count.objects += objects
    if problem is not None:
        raise _bad_frame(problem, rid)
    if not (isinstance(value, list) and len(value) == 3):
        raise _bad_frame("a frame is a 3-element array [op, rid, body]", rid)
    op, raw_rid, body = value
    if not _is_uint(op, 2**64):
        raise _bad_frame("op: must be an unsigned int", rid)
    if not _is_uint(raw_rid, Limits.max_rid):
        raise _bad_frame("rid: must be an unsigned int < 2**32", rid=None)
    if not isinstance(body, dict):
        raise _bad_frame("body: must be a map", rid)
    return op, raw_rid, body


def _readable_rid(value: object) -> int | None:
    """The rid to answer an ERR to, if the value got far enough to have one."""
    if isinstance(value, list) and len(value) >= 2:
        rid = value[1]
        if _is_uint(rid, Limits.max_rid) and rid != 0:
            return int(rid)
    return None


#: What msgpack decodes besides lists and dicts (and the markers below).
_SCALARS: Final = frozenset({str, bytes, int, float, bool, type(None)})


def _problem(value: object, max_depth: int) -> tuple[str | None, int]:
    """Why *value* is not plain msgpack data (or None), and its maps and arrays.

    The envelope array is depth 1; every array or map inside adds one. Walked
    level by level with no call per object: this runs on every frame.
    """
    objects = 0
    level = [value]
    depth = 1
    while level:
        below: list[object] = []
        for node in level:
            kind = type(node)
            if kind is dict:
                items: Iterable[object] = node.values()  # type: ignore[attr-defined]
            elif kind is list:
                items = node  # type: ignore[assignment]
            elif kind in _SCALARS:
                continue
            elif kind is _BadMap:
                return node.problem, objects  # type: ignore[attr-defined]
            else:
                # msgpack.ExtType, and msgpack.Timestamp (ext -1, decoded without ext_hook).
                return "ext types are not allowed", objects
            if depth > max_depth:
                return f"nesting deeper than {max_depth}", objects
            objects += 1
            for item in items:
                if type(item) not in _SCALARS:
                    below.append(item)
        level = below
        depth += 1
    return None, objects


class _BadMap:
    """Stands in for a map that must not become a dict, so the rest of the
    frame (its rid) can still be read before the frame is refused."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _map_or_marker(pairs: list[tuple[object, object]]) -> dict[str, object] | _BadMap:
    # Building maps from pairs also keeps msgpack from hashing keys, which
    # for an array key would raise TypeError instead of a frame error.
    result: dict[str, object] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            return _BadMap("map keys must be str")
        result[key] = value
    if len(result) != len(pairs):
        # Peers might disagree on which duplicate wins; refuse the ambiguity.
        return _BadMap("duplicate map key")
    return result


def _build(cls: type[_Frame], rid: int, body: dict[str, object]) -> _Frame:
    if cls is Ok:
        # OK's body is the whole result map, not a set of fields.
        return _checked(cls, rid, {"rid": rid, "body": body})
    # Any: the wire values are unchecked here; the frame's __post_init__
    # checks each one and raises ValueError naming the field.
    # Pushes have no rid field (TYPING's op is both a request and a push).
    kwargs: dict[str, Any] = {"rid": rid} if cls in _WITH_RID else {}
    for field in _LAYOUTS[cls]:
        if field.key in body:
            kwargs[field.attr] = _CONVERTERS.get(field.attr, _same)(body[field.key])
        elif field.required:
            raise RequestError(ErrorCode.BAD_REQUEST, f"{field.key}: required", rid=rid)
        elif field.nullable:
            kwargs[field.attr] = None
    return _checked(cls, rid, kwargs)


def _checked(cls: type[_Frame], rid: int, kwargs: dict[str, Any]) -> _Frame:
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise RequestError(ErrorCode.BAD_REQUEST, str(exc), rid=rid) from exc


def _bad_frame(message: str, rid: int | None) -> FrameError:
    return FrameError(ErrorCode.BAD_FRAME, message, close_code=CloseCode.INVALID_PAYLOAD, rid=rid)


# Wire values whose frame type differs; a value of the wrong wire type is
# passed through unchanged so that the frame's own check names the field.


def _same(value: object) -> object:
    return value


def _as_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _as_error_code(value: object) -> object:
    if isinstance(value, str) and value in ErrorCode.__members__.values():
        return ErrorCode(value)
    return value


_CONVERTERS: Final = {
    "mentions": _as_tuple,
    "users": _as_tuple,
    "seqs": _as_tuple,
    "code": _as_error_code,
}
