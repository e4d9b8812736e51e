"""Session basics against a real server: send and ack, pushes, errors, requests."""

from __future__ import annotations

import pytest
import trio

from sandcat.client import SandcatClientError, SessionClosed, open_session
from sandcat.protocol import CloseCode, ErrorCode, Kind
from tests.client.cast import Cast, take


async def test_send_is_acked_and_delivered_to_every_device(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with (
            cast.client(ann, "laptop") as laptop,
            cast.client(ann, "phone") as phone,
            cast.client(bob, "desk") as desk,
        ):
            ack = await laptop.session.send(cid, text="hello")
            assert (ack.cid, ack.seq) == (cid, 1)
            assert len(ack.cmid) == 32

            [theirs] = await take(desk.session, 1)
            assert (theirs.seq, theirs.mid, theirs.sender) == (1, ack.mid, ann.id)
            assert theirs.body == {"text": "hello"}
            assert theirs.cmid is None
            assert theirs.device is None

            [other_device] = await take(phone.session, 1)
            assert (other_device.mid, other_device.cmid, other_device.device) == (
                ack.mid,
                ack.cmid,
                "laptop",
            )
            # The sending device gets its own message too, from the ack.
            [own] = await take(laptop.session, 1)
            assert (own.seq, own.mid, own.cmid, own.device) == (1, ack.mid, ack.cmid, "laptop")


async def test_resend_with_the_same_cmid_returns_the_original_ack(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "a") as a, cast.client(bob, "b") as b:
            first = await a.session.send(cid, text="once", cmid="fixed-cmid-1")
            again = await a.session.send(cid, text="once", cmid="fixed-cmid-1")
            assert (again.seq, again.mid, again.ts) == (first.seq, first.mid, first.ts)
            after = await a.session.send(cid, text="next")
            assert after.seq == first.seq + 1  # the resend consumed no seq
            assert [m.seq for m in await take(b.session, 2)] == [1, 2]
            assert [m.seq for m in await take(a.session, 2)] == [1, 2]
            assert b.session.statistics().duplicates == 0  # nothing was pushed twice


async def test_send_to_a_conversation_of_strangers_raises_forbidden(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob, cy = await cast.person("ann"), await cast.person("bob"), await cast.person("cy")
        await cast.befriend(bob, cy)
        group = await cast.group(bob, [cy])
        low, high = sorted((ann.id, bob.id))
        async with cast.client(ann, "a") as a:
            for cid in (f"d:{low}:{high}", group):
                with pytest.raises(SandcatClientError) as caught:
                    await a.session.send(cid, text="let me in")
                assert caught.value.code == ErrorCode.FORBIDDEN
            # A refused send ends nothing: the session still works.
            assert await a.session.ping() > 0


async def test_invalid_content_raises_bad_request(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "a") as a:
            with pytest.raises(SandcatClientError) as caught:
                await a.session.send(cid, kind=Kind.TEXT, body={"txt": "typo"})
            assert caught.value.code == ErrorCode.BAD_REQUEST


async def test_pull_sync_and_read(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "a") as a, cast.client(bob, "b") as b:
            acks = [await a.session.send(cid, text=f"m{i}") for i in range(5)]
            page = await b.session.pull(cid, after=2, limit=2)
            assert [m.seq for m in page.msgs] == [3, 4]
            assert [m.mid for m in page.msgs] == [acks[2].mid, acks[3].mid]
            assert page.more
            assert page.max_seq == 5

            sync = await b.session.sync()
            [conv] = sync.convs
            assert (conv.cid, conv.kind, conv.peer, conv.max_seq) == (cid, "direct", ann.id, 5)
            assert conv.last is not None
            assert conv.last.mid == acks[-1].mid
            assert (await b.session.sync(since=sync.version)).convs == ()

            await b.session.read(cid, 5)
            state = await a.session.receive_read_state()
            assert (state.cid, state.user, state.seq) == (cid, bob.id, 5)


async def test_a_new_connection_of_the_device_ends_the_old_session_without_a_fight(
    cast: Cast,
) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "phone") as old:
            token = await old.access_token()
            async with open_session(cast.ws_url, token, device="phone") as new:
                with pytest.raises(SessionClosed) as caught:
                    await old.session.receive_message()
                assert caught.value.code == CloseCode.REPLACED
                with pytest.raises(SessionClosed):
                    await old.session.send(cid, text="from the old one")
                await trio.sleep(0.3)  # time for a reconnect, which must not happen
                assert old.session.statistics().connects == 1
                assert (await new.send(cid, text="from the new one")).seq == 1


async def test_logout_ends_the_session_with_4007(cast: Cast) -> None:
    with trio.fail_after(10):
        ann = await cast.person("ann")
        async with cast.client(ann, "a") as a:
            await a.api.logout(await a.access_token())
            with pytest.raises(SessionClosed) as caught:
                await a.session.receive_message()
            assert caught.value.code == CloseCode.SESSION_ENDED


async def test_a_refused_token_fails_open_session(cast: Cast) -> None:
    with trio.fail_after(10), pytest.raises(SessionClosed, match="HELLO refused"):
        async with open_session(cast.ws_url, "not-a-token", device="d"):
            pytest.fail("the session must not open")
