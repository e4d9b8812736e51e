"""Property tests: every frame round-trips, and no input crashes the decoders."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandcat.protocol import (
    Auth,
    ClientFrame,
    Err,
    ErrorCode,
    GoAway,
    Hello,
    InboxAck,
    InboxPull,
    Msg,
    Notify,
    Ok,
    Ping,
    ProtocolError,
    Pull,
    Read,
    ReadState,
    Send,
    ServerFrame,
    Sync,
    decode_client,
    decode_server,
    direct_cid,
    encode,
)

# No example database: tests must not write into the source tree.
SETTINGS = settings(database=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
cids = st.one_of(
    ids.map(lambda group: f"g:{group}"),
    st.tuples(ids, ids).filter(lambda pair: pair[0] != pair[1]).map(lambda p: direct_cid(*p)),
)
rids = st.integers(1, 2**32 - 1)
seqs = st.integers(0, 2**53 - 1)
kinds = st.integers(0, 2**31 - 1)
#: Strings without U+0000 and surrogates, which every str field refuses.
clean = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
cmids = st.text(clean, min_size=1, max_size=16)  # at most 4 UTF-8 bytes per char: <= 64 bytes
labels = st.text(min_size=1, max_size=64).filter(str.isprintable)
mentions = st.none() | st.lists(ids, max_size=5).map(tuple)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


# Values as msgpack decodes them (lists, str keys, no NaN so == holds),
# shallow enough to fit inside a frame body.
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
).filter(lambda value: _depth(value) <= 12)

client_frames: st.SearchStrategy[ClientFrame] = st.one_of(
    st.builds(
        Hello,
        rid=rids,
        token=st.none() | st.text(clean, min_size=1, max_size=100),
        device=ids,
        platform=labels,
        client=st.none() | labels,
    ),
    st.builds(Ping, rid=rids),
    st.builds(Auth, rid=rids, token=st.text(clean, min_size=1, max_size=100)),
    st.builds(
        Send,
        rid=rids,
        cid=cids,
        cmid=cmids,
        kind=kinds,
        body=values,
        reply_to=st.none() | seqs,
        mentions=mentions,
    ),
    st.builds(Pull, rid=rids, cid=cids, after=seqs, limit=st.integers(1, 200)),
    st.builds(Sync, rid=rids, since=st.none() | seqs),
    st.builds(Read, rid=rids, cid=cids, seq=seqs),
    st.builds(InboxPull, rid=rids, after=st.none() | seqs, limit=st.integers(1, 200)),
    st.builds(InboxAck, rid=rids, upto=seqs),
)
server_frames: st.SearchStrategy[ServerFrame] = st.one_of(
    st.builds(Ok, rid=rids, body=st.dictionaries(st.text(), values, max_size=5)),
    st.builds(
        Err,
        rid=rids,
        code=st.sampled_from(ErrorCode),
        message=st.text(clean, max_size=100),
        retry_after_ms=st.none() | st.integers(0, 2**32 - 1),
    ),
    st.builds(
        Msg,
        cid=cids,
        seq=seqs,
        mid=ids,
        sender=ids,
        kind=kinds,
        body=values,
        ts=seqs,
        cmid=st.none() | cmids,
        device=st.none() | ids,
        reply_to=st.none() | seqs,
        mentions=mentions,
    ),
    st.builds(ReadState, cid=cids, user=ids, seq=seqs),
    st.builds(
        Notify,
        nseq=seqs,
        type=st.from_regex(r"[a-z0-9_.]{1,64}", fullmatch=True),
        data=st.dictionaries(st.text(), values, max_size=4),
        ts=seqs,
    ),
    st.builds(
        GoAway, reason=st.text(clean, max_size=50), reconnect_after_ms=st.integers(0, 2**32 - 1)
    ),
)


@SETTINGS
@given(client_frames)
def test_client_frames_round_trip(frame: ClientFrame) -> None:
    assert decode_client(encode(frame)) == frame


@SETTINGS
@given(server_frames)
def test_server_frames_round_trip(frame: ServerFrame) -> None:
    assert decode_server(encode(frame)) == frame


def _decode_or_protocol_error(data: bytes) -> None:
    for decode in (decode_client, decode_server):
        try:
            frame = decode(data)
        except ProtocolError:
            continue
        # Whatever decodes must encode and decode to itself again.
        assert decode(encode(frame)) == frame


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    _decode_or_protocol_error(data)


# Any msgpack value, including ext types, non-str keys and odd shapes.
keys = st.text(max_size=5) | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=3)
any_msgpack = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(any_msgpack)
def test_arbitrary_msgpack_values_raise_only_protocol_errors(value: Any) -> None:
    _decode_or_protocol_error(msgpack.packb(value, use_bin_type=True))


FIELD_NAMES = [
    "token", "device", "platform", "client", "cid", "cmid", "kind", "body", "reply_to",
    "mentions", "after", "limit", "since", "seq", "code", "message", "retry_after_ms",
    "mid", "from", "ts", "user", "reason", "reconnect_after_ms",
]  # fmt: skip
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(2**31 - 2, 2**33),
    st.integers(2**53 - 2, 2**53 + 1),
    st.text(max_size=70),
    ids,
    cids,
    st.sampled_from(ErrorCode).map(str),
    st.lists(st.text(max_size=5) | ids, max_size=3),
    values,
)


@SETTINGS
@given(
    op=st.sampled_from([1, 2, 3, 4, 5, 10, 11, 12, 13, 20, 21, 126, 0, 99]),
    rid=st.sampled_from([0, 1, 2**32 - 1, 2**32]),
    body=st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=8),
)
def test_near_miss_frames_raise_only_protocol_errors(
    op: int, rid: int, body: dict[str, Any]
) -> None:
    _decode_or_protocol_error(msgpack.packb([op, rid, body], use_bin_type=True))
