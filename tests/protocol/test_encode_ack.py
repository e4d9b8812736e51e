"""``encode_ack`` writes exactly the bytes ``encode(Ok(...))`` writes for a SEND's ack.

The router acks every message without building and checking an ``Ok``
(issue 14); a client must not be able to tell, for rids (1 to
``Limits.max_rid - 1``) and seqs at their bounds and every msgpack width.
"""

from __future__ import annotations

import pytest

from sandcat.protocol import Limits, Ok, decode_server, encode, encode_ack

_TOP_RID = Limits.max_rid - 1


@pytest.mark.parametrize("rid", [1, 127, 128, 65_535, 65_536, _TOP_RID - 1, _TOP_RID])
@pytest.mark.parametrize("seq", [1, 2**16, 2**32, 2**53])
def test_an_ack_encodes_like_the_checked_frame(rid: int, seq: int) -> None:
    body = {"cid": "d:alice:bob", "seq": seq, "mid": "m" * 22, "ts": 1_700_000_000_000}
    data = encode_ack(rid, "d:alice:bob", seq, "m" * 22, 1_700_000_000_000)
    assert data == encode(Ok(rid=rid, body=body))
    assert decode_server(data) == Ok(rid=rid, body=body)


def test_a_group_ack_with_a_long_cid_encodes_like_the_checked_frame() -> None:
    cid = "g:" + "x" * 64
    body = {"cid": cid, "seq": 9, "mid": "abc", "ts": 0}
    assert encode_ack(2, cid, 9, "abc", 0) == encode(Ok(rid=2, body=body))
