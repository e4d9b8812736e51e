"""The SDK's recall, edit, history, lookup and hide, and delivery past hidden seqs."""

from __future__ import annotations

import pytest
import trio

from sandcat.client import Conversations, SandcatClientError
from sandcat.protocol import Kind, Msg
from tests.client.cast import Cast, take

CID = "g:crew"


def _msg(seq: int) -> Msg:
    return Msg(cid=CID, seq=seq, mid=f"m{seq}", sender="ann", kind=1, body={"text": "x"}, ts=1)


def test_seqs_a_pull_skipped_were_hidden_and_are_not_waited_for() -> None:
    conversations = Conversations({CID: 1})
    conversations.offer(_msg(5))
    assert conversations.missing() == (CID, 1)
    pulled = [_msg(4), _msg(5), _msg(7)]
    for msg in pulled:
        conversations.offer(msg)

    assert conversations.pulled(CID, 1, [m.seq for m in pulled]) == 3  # 2, 3 and 6

    assert [m.seq for m in iter(conversations.pop_ready, None)] == [4, 5, 7]
    assert conversations.missing() is None


async def test_recall_edit_history_and_hide_through_the_sdk(cast: Cast) -> None:
    with trio.fail_after(15):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "laptop") as a, cast.client(bob, "desk") as b:
            first = await a.session.send(cid, text="helo")
            await a.session.send(cid, text="oops")
            edited = await a.session.edit(cid, first.seq, "hello")
            recalled = await a.session.recall(cid, 2)
            assert (edited.seq, recalled.seq) == (3, 4)

            seen = await take(b.session, 4)
            assert [(m.seq, m.kind) for m in seen] == [
                (1, Kind.TEXT),
                (2, Kind.TEXT),
                (3, Kind.EDIT),
                (4, Kind.RECALL),
            ]
            own = await take(a.session, 4)
            assert own[3].body == {"seq": 2}

            page = await b.session.history(cid, before=3)
            assert [m.seq for m in page.msgs] == [1, 2]
            assert page.msgs[0].body == {"text": "hello"}
            assert page.msgs[0].edited_at == edited.ts
            assert page.msgs[1].recalled is True
            assert (await b.session.message(first.mid)).seq == 1

            await b.session.hide(cid, [1, 2])
            assert [m.seq for m in (await b.session.history(cid)).msgs] == [3, 4]
            with pytest.raises(SandcatClientError) as info:
                await b.session.message(first.mid)
            assert info.value.code == "not_found"
            with pytest.raises(SandcatClientError) as info:
                await b.session.edit(cid, first.seq, "mine now")
            assert info.value.code == "forbidden"


async def test_a_device_resuming_past_hidden_messages_does_not_pull_forever(cast: Cast) -> None:
    with trio.fail_after(15):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "laptop") as a:
            for text in ("one", "two", "three", "four"):
                await a.session.send(cid, text=text)
            await a.session.hide(cid, [2, 3])
        async with cast.client(ann, "phone", positions={cid: 1}) as phone:
            [four] = await take(phone.session, 1)
            assert (four.seq, four.body) == (4, {"text": "four"})
            await phone.session.ping()
            assert phone.session.statistics().pulls <= 2
