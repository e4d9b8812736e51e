"""The timeline operations end to end on PostgreSQL: one scenario through every part."""

from __future__ import annotations

from typing import Any

import pytest

from sandcat.protocol import Edit, Err, ErrorCode, Hide, History, Kind, Msg, Pull, Recall, Send
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Api


@pytest.fixture
def server_overrides(postgres_url: str) -> dict[str, object]:
    return {"backends.database_url": postgres_url}


async def _ok(conn: Raw, frame: object) -> dict[str, Any]:
    return ok_body(await conn.request(frame))


async def test_recall_edit_reply_mention_forward_history_and_hide(
    api: Api, connect: Connect
) -> None:
    owner, member, friend = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, member)
    direct = await api.befriend(member, friend)
    cid = await api.group(owner, [member])
    o = await connect(owner.token)
    m = await connect(member.token)
    f = await connect(friend.token)

    def text(conn: Raw, where: str, cmid: str, **extra: Any) -> Send:
        return Send(rid=conn.rid(), cid=where, cmid=cmid, kind=1, body={"text": cmid}, **extra)

    await _ok(o, text(o, cid, "rules", mentions=("@all",)))
    await _ok(m, text(m, cid, "ok", reply_to=1, mentions=(owner.id,)))
    await _ok(m, Edit(rid=m.rid(), cid=cid, cmid="e", seq=2, body={"text": "okay"}))
    await _ok(o, Recall(rid=o.rid(), cid=cid, cmid="r", seq=2))
    refused = await m.request(text(m, cid, "bad", reply_to=2))
    assert isinstance(refused, Err)
    assert refused.code == ErrorCode.BAD_REQUEST
    forwarded = await _ok(m, text(m, direct, "rules", forward={"cid": cid, "seq": 1}))
    pushed = await f.push()
    assert isinstance(pushed, Msg)
    assert pushed.forward == {"cid": cid, "seq": 1, "from": owner.id}
    assert pushed.seq == forwarded["seq"]

    page = await _ok(m, History(rid=m.rid(), cid=cid))
    entries = page["msgs"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["mentions"] == ["@all"]
    assert (entries[1]["recalled"], entries[1]["body"], entries[1]["reply_to"]) == (True, None, 1)
    assert "edited_at" in entries[1]
    assert [e["kind"] for e in entries[2:]] == [Kind.EDIT, Kind.RECALL]
    by_mid = await _ok(o, History(rid=o.rid(), mid=entries[0]["mid"]))
    assert by_mid["msgs"][0]["seq"] == 1

    await _ok(m, Hide(rid=m.rid(), cid=cid, seqs=(1, 3)))
    pulled = await _ok(m, Pull(rid=m.rid(), cid=cid, after=0))
    assert [e["seq"] for e in pulled["msgs"]] == [2, 4]
    theirs = await _ok(o, Pull(rid=o.rid(), cid=cid, after=0))
    assert [e["seq"] for e in theirs["msgs"]] == [1, 2, 3, 4]
