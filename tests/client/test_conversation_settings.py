"""The SDK's conversation calls against a real server: CONV_SET, READERS, the grown CONV."""

from __future__ import annotations

import pytest
import trio

from sandcat.client import SandcatClientError
from tests.client.cast import Cast, take


async def test_settings_unread_and_readers_through_the_sdk(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        group = await cast.group(ann, [bob])
        async with cast.client(ann, "laptop") as laptop, cast.client(bob, "desk") as desk:
            await laptop.session.send(group, text="one")
            await laptop.session.send(group, text="two @bob", mentions=(bob.id,))
            await take(desk.session, 2)
            [conv] = [c for c in (await desk.session.sync()).convs if c.cid == group]
            assert (conv.unread, conv.mention, conv.hidden, conv.cleared_seq) == (2, True, False, 0)
            settings = await desk.session.conv_set(group, pinned=True, clear=True)
            assert (settings["pinned"], settings["cleared_seq"]) == (True, 2)
            [conv] = [c for c in (await desk.session.sync()).convs if c.cid == group]
            assert (conv.pinned, conv.unread, conv.mention, conv.min_seq) == (True, 0, False, 3)
            [direct] = [c for c in (await desk.session.sync()).convs if c.cid == cid]
            assert (direct.peer_read_seq, direct.unread) == (0, 0)
            page = await laptop.session.readers(group, 2)
            assert (page.read, page.unread, page.next) == ((ann.id,), (bob.id,), None)
            with pytest.raises(SandcatClientError) as info:
                await laptop.session.readers(cid, 1)
            assert info.value.code == "bad_request"
