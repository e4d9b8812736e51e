"""Recall and edit events and forwards reach devices on the other instance through Kafka."""

from __future__ import annotations

import trio

from sandcat.protocol import Kind
from tests.client.cast import Cast, take
from tests.cluster.conftest import Instance


async def test_recall_edit_and_forward_cross_instances(
    cluster: tuple[Instance, Instance], cast: Cast
) -> None:
    a, b = cluster
    with trio.fail_after(60):
        alice, bob, cy = [await cast.person(n) for n in ("alice", "bob", "cy")]
        direct = await cast.befriend(alice, bob)
        other = await cast.befriend(bob, cy)
        async with (
            cast.client(alice, "laptop", ws_url=a.ws_url) as laptop,
            cast.client(bob, "desk", ws_url=b.ws_url) as desk,
            cast.client(cy, "tablet", ws_url=b.ws_url) as tablet,
        ):
            first = await laptop.session.send(direct, text="helo")
            await laptop.session.edit(direct, first.seq, "hello")
            await laptop.session.recall(direct, first.seq)

            seen = await take(desk.session, 3)
            assert [(m.seq, m.kind) for m in seen] == [
                (1, Kind.TEXT),
                (2, Kind.EDIT),
                (3, Kind.RECALL),
            ]
            assert seen[1].body == {"seq": 1, "body": {"text": "hello"}}

            second = await laptop.session.send(direct, text="news")
            [news] = await take(desk.session, 1)
            assert news.seq == second.seq
            await desk.session.send(
                other, kind=Kind.TEXT, body={"text": "news"}, forward={"cid": direct, "seq": 4}
            )
            [copy] = await take(tablet.session, 1)
            assert copy.forward == {"cid": direct, "seq": 4, "from": alice.id}

            page = await desk.session.history(direct, before=4)
            assert page.msgs[0].recalled is True
