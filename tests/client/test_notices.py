"""The SDK and the inbox: NOTIFY pushes, pulling and acknowledging notices."""

from __future__ import annotations

import trio

from tests.client.cast import Cast


async def test_notices_are_pushed_pulled_and_acked(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        async with cast.client(bob, "phone") as phone:
            request = await cast.api.request_friend(ann.token, bob.id, message="hi bob")
            notice = await phone.session.receive_notice()
            assert (notice.nseq, notice.type) == (1, "friend.requested")
            assert notice.data["request"] == request.id
            assert notice.data["message"] == "hi bob"

            page = await phone.session.inbox()
            assert [n.nseq for n in page.notices] == [1]
            assert (page.more, page.max_nseq) == (False, 1)
            assert page.notices[0] == notice
            await phone.session.inbox_ack(1)
            assert (await phone.session.inbox()).notices == ()
            assert (await phone.session.sync()).inbox_max == 1
