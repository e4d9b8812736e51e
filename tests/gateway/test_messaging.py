"""protocol/SPEC.md §4-5, the messaging frames: SEND, MSG, PULL, SYNC, READ, READ_STATE.

Each test sets up accounts over HTTP and then speaks raw frames to a real
server. Absence of a push is checked with a PING round trip: the server
queues pushes before the replies that follow them, so a push that was going
to come arrives before the PING's OK.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from sandcat.protocol import (
    Err,
    ErrorCode,
    Msg,
    Ok,
    Ping,
    Pull,
    Read,
    ReadState,
    Send,
    Sync,
    encode,
)
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


def _text(conn: Raw, cid: str, cmid: str, text: str | None = None) -> Send:
    return Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=1, body={"text": text or cmid})


async def _send(conn: Raw, cid: str, cmid: str, text: str | None = None) -> dict[str, Any]:
    """SEND a text; the ack's body."""
    return ok_body(await conn.request(_text(conn, cid, cmid, text)))


async def _ok(conn: Raw, frame: object) -> dict[str, Any]:
    """A request that must succeed; the OK's body."""
    return ok_body(await conn.request(frame))


async def _no_push(conn: Raw) -> None:
    """Assert nothing was pushed to ``conn`` so far (see the module docstring)."""
    await _ok(conn, Ping(rid=conn.rid()))
    assert conn.pushes == []


async def _msg(conn: Raw) -> Msg:
    push = await conn.push()
    assert isinstance(push, Msg), push
    return push


def _direct(a: Account, b: Account) -> str:
    low, high = sorted((a.id, b.id))
    return f"d:{low}:{high}"


# -- SEND and MSG --------------------------------------------------------------


async def test_send_is_acked_with_cid_seq_mid_ts(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    conn = await connect(alice.token)
    first = await _send(conn, cid, "c1")
    second = await _send(conn, cid, "c2")
    assert set(first) == {"cid", "seq", "mid", "ts"}
    assert (first["cid"], first["seq"], second["seq"]) == (cid, 1, 2)
    assert first["mid"] != second["mid"]
    assert isinstance(first["ts"], int)


async def test_msg_reaches_peer_devices_plain_and_senders_other_devices_with_cmid(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    phone = await connect(alice.token, device="phone")
    laptop = await connect(alice.token, device="laptop")
    bob_phone = await connect(bob.token, device="phone")
    bob_laptop = await connect(bob.token, device="laptop")
    ack = await _send(phone, cid, "hello-1", "hello")
    plain = Msg(
        cid=cid,
        seq=1,
        mid=ack["mid"],
        sender=alice.id,
        kind=1,
        body={"text": "hello"},
        ts=ack["ts"],
    )
    assert await _msg(bob_phone) == plain
    assert await _msg(bob_laptop) == plain
    own = await _msg(laptop)
    assert (own.cmid, own.device) == ("hello-1", "phone")
    assert (own.cid, own.seq, own.mid, own.sender, own.body) == (
        cid,
        1,
        ack["mid"],
        alice.id,
        {"text": "hello"},
    )
    await _no_push(phone)


async def test_resend_with_same_cmid_returns_same_seq_and_mid_and_pushes_nothing(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    sender = await connect(alice.token)
    receiver = await connect(bob.token)
    first = await _send(sender, cid, "same")
    again = await _send(sender, cid, "same")
    assert (again["seq"], again["mid"]) == (first["seq"], first["mid"])
    assert (await _msg(receiver)).seq == 1
    await _no_push(receiver)
    assert (await _send(sender, cid, "next"))["seq"] == 2


@pytest.mark.parametrize(
    "server_overrides", [pytest.param({"pipeline.recent_acks": 0}, id="no-ack-cache")]
)
async def test_resend_is_deduplicated_by_the_store_without_the_ack_cache(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    sender = await connect(alice.token)
    receiver = await connect(bob.token)
    first = await _send(sender, cid, "same")
    again = await _send(sender, cid, "same")
    assert (again["seq"], again["mid"]) == (first["seq"], first["mid"])
    assert (await _msg(receiver)).seq == 1
    await _no_push(receiver)


async def test_concurrent_senders_in_a_group_get_contiguous_seqs(
    api: Api, connect: Connect
) -> None:
    owner = await api.account()
    members = [await api.account() for _ in range(3)]
    for member in members:
        await api.befriend(owner, member)
    cid = await api.group(owner, members)
    observer = await connect(owner.token)
    senders = [await connect(member.token) for member in members]
    per_sender = 20
    acks: list[int] = []

    async def burst(conn: Raw, index: int) -> None:
        frames = [_text(conn, cid, f"s{index}-{n}") for n in range(per_sender)]
        for frame in frames:  # all in flight at once, then the acks
            await conn.send(encode(frame))
        for frame in frames:
            acks.append(ok_body(await conn.reply(frame.rid))["seq"])

    async with trio.open_nursery() as nursery:
        for index, conn in enumerate(senders):
            nursery.start_soon(burst, conn, index)
    total = per_sender * len(senders)
    assert sorted(acks) == list(range(1, total + 1))
    pushed = [(await _msg(observer)).seq for _ in range(total)]
    assert pushed == list(range(1, total + 1))
    page = await _ok(observer, Pull(rid=observer.rid(), cid=cid, after=0, limit=200))
    assert [m["seq"] for m in page["msgs"]] == list(range(1, total + 1))


async def test_group_message_reaches_every_member(api: Api, connect: Connect) -> None:
    owner = await api.account()
    members = [await api.account() for _ in range(3)]
    for member in members:
        await api.befriend(owner, member)
    cid = await api.group(owner, members)
    conns = [await connect(account.token) for account in (owner, *members)]
    ack = await _send(conns[1], cid, "to-all", "hi all")
    for conn in (conns[0], conns[2], conns[3]):
        push = await _msg(conn)
        assert (push.cid, push.seq, push.mid, push.sender, push.body) == (
            cid,
            1,
            ack["mid"],
            members[0].id,
            {"text": "hi all"},
        )
        assert push.cmid is None
    await _no_push(conns[1])


async def test_default_dm_policy_forbids_direct_messages_to_non_friends(
    api: Api, connect: Connect
) -> None:
    alice, carol = await api.account(), await api.account()
    conn = await connect(alice.token)
    reply = await conn.request(_text(conn, _direct(alice, carol), "hi"))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.FORBIDDEN


@pytest.mark.parametrize(
    "server_overrides", [pytest.param({"chat.dm_policy": "anyone"}, id="anyone")]
)
async def test_dm_policy_anyone_lets_non_friends_open_a_direct_conversation(
    api: Api, connect: Connect
) -> None:
    alice, carol = await api.account(), await api.account()
    cid = _direct(alice, carol)
    sender = await connect(alice.token)
    receiver = await connect(carol.token)
    ack = await _send(sender, cid, "hi")
    assert ack["seq"] == 1
    push = await _msg(receiver)
    assert (push.cid, push.sender) == (cid, alice.id)
    synced = await _ok(receiver, Sync(rid=receiver.rid()))
    (conv,) = synced["convs"]
    assert (conv["cid"], conv["kind"], conv["peer"]) == (cid, "direct", alice.id)
    reply = await receiver.request(_text(receiver, cid, "hi back"))
    assert isinstance(reply, Ok), reply


# -- PULL ----------------------------------------------------------------------


async def test_pull_pages_with_limit_more_and_bounds(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    conn = await connect(alice.token)
    empty = await _ok(conn, Pull(rid=conn.rid(), cid=cid, after=0))
    assert empty == {"msgs": [], "more": False, "min_seq": 1, "max_seq": 0}
    for n in range(5):
        await _send(conn, cid, f"c{n}")

    async def page(after: int, limit: int) -> tuple[list[int], object, object, object]:
        reply = await _ok(conn, Pull(rid=conn.rid(), cid=cid, after=after, limit=limit))
        seqs = [m["seq"] for m in reply["msgs"]]
        return seqs, reply["more"], reply["min_seq"], reply["max_seq"]

    assert await page(0, 2) == ([1, 2], True, 1, 5)
    assert await page(2, 2) == ([3, 4], True, 1, 5)
    assert await page(4, 2) == ([5], False, 1, 5)
    assert await page(5, 2) == ([], False, 1, 5)
    assert await page(0, 50) == ([1, 2, 3, 4, 5], False, 1, 5)
    reply = await _ok(conn, Pull(rid=conn.rid(), cid=cid, after=2, limit=1))
    (entry,) = reply["msgs"]
    assert entry["from"] == alice.id
    assert entry["body"] == {"text": "c2"}
    assert (entry["cmid"], entry["device"]) == ("c2", "d1")  # own message


async def test_pull_of_a_conversation_one_is_not_in_is_forbidden(
    api: Api, connect: Connect
) -> None:
    alice, bob, mallory = await api.account(), await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    group = await api.group(alice, [bob])
    conn = await connect(mallory.token)
    for target in (cid, group, "g:nosuchgroup", _direct(mallory, alice)):
        reply = await conn.request(Pull(rid=conn.rid(), cid=target, after=0))
        assert isinstance(reply, Err), target
        assert reply.code == ErrorCode.FORBIDDEN


# -- SYNC ----------------------------------------------------------------------


async def test_sync_without_since_lists_every_conversation(api: Api, connect: Connect) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    with_bob = await api.befriend(alice, bob)
    with_carol = await api.befriend(alice, carol)
    group = await api.group(alice, [bob, carol], name="trio")
    conn = await connect(alice.token)
    bob_conn = await connect(bob.token)
    await _send(conn, with_bob, "a1")
    last = await _send(bob_conn, with_bob, "b1", "from bob")
    await _send(conn, group, "g1", "to group")
    await _ok(conn, Read(rid=conn.rid(), cid=with_bob, seq=1))

    reply = await _ok(conn, Sync(rid=conn.rid()))
    assert set(reply) == {"convs", "version", "inbox_max"}
    convs = {conv["cid"]: conv for conv in reply["convs"]}
    assert set(convs) == {with_bob, with_carol, group}

    direct = convs[with_bob]
    assert (direct["kind"], direct["peer"], direct["max_seq"], direct["read_seq"]) == (
        "direct",
        bob.id,
        2,
        1,
    )
    assert "group" not in direct
    assert direct["last"]["seq"] == 2
    assert direct["last"]["mid"] == last["mid"]
    assert direct["last"]["from"] == bob.id
    assert direct["last"]["body"] == {"text": "from bob"}
    assert "cmid" not in direct["last"]  # bob's message, seen by alice

    quiet = convs[with_carol]
    assert (quiet["kind"], quiet["peer"], quiet["max_seq"], quiet["read_seq"]) == (
        "direct",
        carol.id,
        0,
        0,
    )
    assert "last" not in quiet

    grouped = convs[group]
    assert (grouped["kind"], grouped["group"], grouped["max_seq"]) == (
        "group",
        group.removeprefix("g:"),
        1,
    )
    assert "peer" not in grouped
    assert grouped["last"]["cmid"] == "g1"  # alice's own message
    for conv in convs.values():
        assert {"min_seq", "muted", "pinned"} <= set(conv)


async def test_sync_with_since_returns_only_conversations_changed_after_it(
    api: Api, connect: Connect
) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    with_bob = await api.befriend(alice, bob)
    with_carol = await api.befriend(alice, carol)
    conn = await connect(alice.token)
    bob_conn = await connect(bob.token)
    await _send(conn, with_bob, "a1")
    await _send(conn, with_carol, "a2")

    async def sync(target: Raw, since: int | None) -> tuple[list[str], int]:
        reply = await _ok(target, Sync(rid=target.rid(), since=since))
        cids = [conv["cid"] for conv in reply["convs"]]
        return cids, reply["version"]

    _, version = await sync(conn, None)
    assert await sync(conn, version) == ([], version)

    await _send(bob_conn, with_bob, "b1")  # a new message counts
    changed, version = await sync(conn, version)
    assert changed == [with_bob]

    _, bob_version = await sync(bob_conn, None)
    # A READ counts for the reader (seq 1 is Alice's own: sending already read it).
    await _ok(conn, Read(rid=conn.rid(), cid=with_bob, seq=2))
    changed, version = await sync(conn, version)
    assert changed == [with_bob]
    # ... and for the direct peer, who learns the new peer_read_seq (read receipts).
    assert (await sync(bob_conn, bob_version))[0] == [with_bob]
    assert (await sync(conn, version))[0] == []


# -- READ ----------------------------------------------------------------------


async def test_read_is_pushed_to_readers_other_devices_and_direct_peer(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    phone = await connect(alice.token, device="phone")
    laptop = await connect(alice.token, device="laptop")
    peer = await connect(bob.token)
    for n in range(3):
        await _send(peer, cid, f"b{n}")
    for conn in (phone, laptop):
        for _ in range(3):
            await _msg(conn)

    reply = await _ok(phone, Read(rid=phone.rid(), cid=cid, seq=2))
    assert reply == {}
    state = ReadState(cid=cid, user=alice.id, seq=2)
    assert await laptop.push() == state
    assert await peer.push() == state
    await _no_push(phone)


async def test_read_never_goes_backwards_and_is_clamped_to_max_seq(
    api: Api, connect: Connect
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    reader = await connect(alice.token, device="phone")
    peer = await connect(bob.token)
    for n in range(3):
        await _send(peer, cid, f"b{n}")

    async def read_seq() -> object:
        reply = await _ok(reader, Sync(rid=reader.rid()))
        (conv,) = reply["convs"]
        return conv["read_seq"]

    await _ok(reader, Read(rid=reader.rid(), cid=cid, seq=2))
    assert await peer.push() == ReadState(cid=cid, user=alice.id, seq=2)
    await _ok(reader, Read(rid=reader.rid(), cid=cid, seq=1))
    await _no_push(peer)
    assert await read_seq() == 2
    await _ok(reader, Read(rid=reader.rid(), cid=cid, seq=99))
    assert await peer.push() == ReadState(cid=cid, user=alice.id, seq=3)
    assert await read_seq() == 3


async def test_read_in_a_group_is_not_pushed_to_other_members(api: Api, connect: Connect) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    cid = await api.group(alice, [bob])
    reader = await connect(alice.token, device="phone")
    other_device = await connect(alice.token, device="laptop")
    member = await connect(bob.token)
    await _send(member, cid, "b0")
    await _msg(reader)
    await _msg(other_device)
    await _ok(reader, Read(rid=reader.rid(), cid=cid, seq=1))
    assert await other_device.push() == ReadState(cid=cid, user=alice.id, seq=1)
    await _no_push(member)


async def test_read_of_a_conversation_one_is_not_in_is_forbidden(
    api: Api, connect: Connect
) -> None:
    alice, bob, mallory = await api.account(), await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    conn = await connect(mallory.token)
    reply = await conn.request(Read(rid=conn.rid(), cid=cid, seq=1))
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.FORBIDDEN
