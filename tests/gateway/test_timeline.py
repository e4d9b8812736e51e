"""SPEC.md "The timeline" over real sockets: recall, edit, replies, mentions, forwards, hiding.

The server runs on a clock the tests move, so the recall and edit windows are
checked without waiting. Every refusal is followed by a SEND whose seq shows
that the refusal consumed none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.clock import system_clock
from sandcat.protocol import (
    Edit,
    Err,
    ErrorCode,
    Hide,
    History,
    Kind,
    Msg,
    Ok,
    Ping,
    Pull,
    Recall,
    Send,
)
from tests.files.media import png
from tests.files.scene import content, uploaded
from tests.gateway.raw import Raw, ok_body
from tests.passwords import FAST_PASSWORDS
from tests.scene import Account, Api, make_config

RECALL_S, EDIT_S = 60, 120


class MovableClock:
    def __init__(self) -> None:
        self.now_ms = system_clock()

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def server(
    tmp_path: Path, nursery: trio.Nursery, clock: MovableClock
) -> AsyncIterator[Server]:
    config = make_config(
        tmp_path / "data", **{"chat.recall_window_s": RECALL_S, "chat.edit_window_s": EDIT_S}
    )
    running: Server = await nursery.start(
        lambda task_status: run_server(
            config, clock=clock, passwords=FAST_PASSWORDS, task_status=task_status
        )
    )
    yield running
    running.shutdown()


async def _ok(conn: Raw, frame: object) -> dict[str, Any]:
    return ok_body(await conn.request(frame))


async def _err(conn: Raw, frame: object, code: ErrorCode) -> str:
    reply = await conn.request(frame)
    assert isinstance(reply, Err), reply
    assert reply.code == code, reply
    return reply.message


async def _text(conn: Raw, cid: str, cmid: str, **extra: Any) -> dict[str, Any]:
    return await _ok(
        conn, Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=1, body={"text": cmid}, **extra)
    )


async def _msg(conn: Raw) -> Msg:
    push = await conn.push()
    assert isinstance(push, Msg), push
    return push


async def _pull(conn: Raw, cid: str, after: int = 0) -> list[dict[str, Any]]:
    return list((await _ok(conn, Pull(rid=conn.rid(), cid=cid, after=after)))["msgs"])


async def _no_push(conn: Raw) -> None:
    await _ok(conn, Ping(rid=conn.rid()))
    assert conn.pushes == []


async def _pair(api: Api, connect: Any) -> tuple[Account, Account, str, Raw, Raw]:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    return alice, bob, cid, await connect(alice.token), await connect(bob.token)


# -- recall ----------------------------------------------------------------------


async def test_recall_is_a_new_event_pushed_to_everyone_and_pull_returns_a_tombstone(
    api: Api, connect: Any
) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    phone = await connect(alice.token, device="phone")
    laptop = await connect(alice.token, device="laptop")
    bob_phone = await connect(bob.token, device="phone")
    bob_laptop = await connect(bob.token, device="laptop")
    await _text(phone, cid, "oops", mentions=(bob.id,))
    for conn in (laptop, bob_phone, bob_laptop):
        await _msg(conn)

    ack = await _ok(phone, Recall(rid=phone.rid(), cid=cid, cmid="r-1", seq=1))

    assert (ack["cid"], ack["seq"]) == (cid, 2)
    for conn in (bob_phone, bob_laptop):
        event = await _msg(conn)
        assert (event.seq, event.kind, event.body, event.sender) == (
            2,
            Kind.RECALL,
            {"seq": 1},
            alice.id,
        )
        assert event.mid == ack["mid"]
    own = await _msg(laptop)
    assert (own.kind, own.cmid, own.device) == (Kind.RECALL, "r-1", "phone")
    await _no_push(phone)
    target, event_entry = await _pull(bob_phone, cid)
    assert target["recalled"] is True
    assert target["body"] is None
    assert "mentions" not in target
    assert (target["seq"], target["kind"]) == (1, Kind.TEXT)
    assert event_entry["kind"] == Kind.RECALL


async def test_recall_resent_with_the_same_cmid_returns_the_first_ack_and_stores_nothing(
    api: Api, connect: Any
) -> None:
    _, _, cid, alice, bob = await _pair(api, connect)
    await _text(alice, cid, "m1")
    await _msg(bob)
    first = await _ok(alice, Recall(rid=alice.rid(), cid=cid, cmid="r", seq=1))
    await _msg(bob)

    again = await _ok(alice, Recall(rid=alice.rid(), cid=cid, cmid="r", seq=1))

    assert again == first
    await _no_push(bob)
    assert (await _text(alice, cid, "m3"))["seq"] == 3


async def test_recall_refusals_store_nothing_and_consume_no_seq(
    api: Api, connect: Any, clock: MovableClock
) -> None:
    alice, bob, cid, a, b = await _pair(api, connect)
    stranger = await connect((await api.account()).token)
    await _text(a, cid, "m1")
    await _ok(b, Send(rid=b.rid(), cid=cid, cmid="e", kind=Kind.EMOJI, body={"emoji": "🎉"}))

    # Someone else's message, a stranger, an unknown seq.
    await _err(a, Recall(rid=a.rid(), cid=cid, cmid="x1", seq=2), ErrorCode.FORBIDDEN)
    await _err(stranger, Recall(rid=stranger.rid(), cid=cid, cmid="x2", seq=1), ErrorCode.FORBIDDEN)
    await _err(a, Recall(rid=a.rid(), cid=cid, cmid="x3", seq=99), ErrorCode.BAD_REQUEST)
    # A recall event cannot be recalled, nor a message twice.
    await _ok(a, Recall(rid=a.rid(), cid=cid, cmid="r", seq=1))
    await _err(a, Recall(rid=a.rid(), cid=cid, cmid="x4", seq=1), ErrorCode.BAD_REQUEST)
    await _err(a, Recall(rid=a.rid(), cid=cid, cmid="x5", seq=3), ErrorCode.BAD_REQUEST)
    # The window has passed.
    clock.advance(RECALL_S + 1)
    message = await _err(b, Recall(rid=b.rid(), cid=cid, cmid="x6", seq=2), ErrorCode.FORBIDDEN)
    assert "60 s" in message
    # Malformed: no seq; a server kind in SEND.
    await a.send(b"\x93\x10\x63\x82\xa3cid" + _str(cid) + b"\xa4cmid\xa1z")
    reply = await a.reply(0x63)
    assert isinstance(reply, Err)
    assert reply.code == ErrorCode.BAD_REQUEST
    await _err(
        a,
        Send(rid=a.rid(), cid=cid, cmid="k", kind=Kind.RECALL, body={"seq": 1}),
        ErrorCode.BAD_REQUEST,
    )

    assert (await _text(a, cid, "after"))["seq"] == 4
    assert [m["seq"] for m in await _pull(b, cid)] == [1, 2, 3, 4]
    assert alice.id != bob.id


def _str(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 256
    return (b"\xd9" + bytes([len(data)])) + data


async def test_group_owner_and_admin_recall_any_message_at_any_time_members_do_not(
    api: Api, connect: Any, clock: MovableClock
) -> None:
    owner, admin, member = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, admin)
    await api.befriend(owner, member)
    cid = await api.group(owner, [admin, member])
    made = await api.http.post(
        f"/api/v1/groups/{cid[2:]}/roles",
        json={"user": admin.id, "role": "admin"},
        headers=api.auth(owner),
    )
    assert made.status_code == 200, made.text
    o, a, m = [await connect(x.token) for x in (owner, admin, member)]
    owners = (await _text(o, cid, "rules"))["seq"]
    first = (await _text(m, cid, "spam"))["seq"]
    await _text(m, cid, "more spam")
    clock.advance(RECALL_S * 10)

    await _err(m, Recall(rid=m.rid(), cid=cid, cmid="own", seq=first), ErrorCode.FORBIDDEN)
    await _err(m, Recall(rid=m.rid(), cid=cid, cmid="x", seq=owners), ErrorCode.FORBIDDEN)
    by_admin = await _ok(a, Recall(rid=a.rid(), cid=cid, cmid="r1", seq=first))
    by_owner = await _ok(o, Recall(rid=o.rid(), cid=cid, cmid="r2", seq=first + 1))

    assert (by_admin["seq"], by_owner["seq"]) == (first + 2, first + 3)
    entries = {e["seq"]: e for e in await _pull(m, cid)}
    assert entries[first]["recalled"] is entries[first + 1]["recalled"] is True
    assert entries[first + 2]["from"] == admin.id


# -- edit -------------------------------------------------------------------------


async def test_edit_is_an_event_and_pull_and_history_return_the_edited_message(
    api: Api, connect: Any, clock: MovableClock
) -> None:
    _, _, cid, alice, bob = await _pair(api, connect)
    sent = await _text(alice, cid, "helo")
    await _msg(bob)
    clock.advance(5)

    ack = await _ok(alice, Edit(rid=alice.rid(), cid=cid, cmid="ed", seq=1, body={"text": "hello"}))

    event = await _msg(bob)
    assert (event.seq, event.kind, event.body) == (
        2,
        Kind.EDIT,
        {"seq": 1, "body": {"text": "hello"}},
    )
    assert ack["seq"] == 2
    edited = (await _pull(bob, cid))[0]
    assert edited["body"] == {"text": "hello"}
    assert edited["edited_at"] == ack["ts"]
    assert edited["ts"] == sent["ts"]
    page = await _ok(bob, History(rid=bob.rid(), mid=sent["mid"]))
    assert page["msgs"] == [edited]
    again = await _ok(
        alice, Edit(rid=alice.rid(), cid=cid, cmid="ed", seq=1, body={"text": "other"})
    )
    assert again == ack


async def test_edit_refusals_store_nothing_and_consume_no_seq(
    api: Api, connect: Any, clock: MovableClock
) -> None:
    _, _, cid, alice, bob = await _pair(api, connect)
    await _text(alice, cid, "t")
    await _ok(alice, Send(rid=alice.rid(), cid=cid, cmid="e", kind=Kind.EMOJI, body={"emoji": "x"}))

    def edit(conn: Raw, seq: int, body: object = None) -> Edit:
        return Edit(
            rid=conn.rid(), cid=cid, cmid=f"x{conn.rid()}", seq=seq, body=body or {"text": "n"}
        )

    await _err(bob, edit(bob, 1), ErrorCode.FORBIDDEN)
    await _err(alice, edit(alice, 2), ErrorCode.BAD_REQUEST)  # not text
    await _err(alice, edit(alice, 1, {"text": ""}), ErrorCode.BAD_REQUEST)
    await _err(alice, edit(alice, 1, {"text": "x", "html": "<b>"}), ErrorCode.BAD_REQUEST)
    await _err(alice, edit(alice, 1, {"text": "x" * 16385}), ErrorCode.BAD_REQUEST)
    await _err(alice, edit(alice, 1, ["text"]), ErrorCode.BAD_REQUEST)
    await _err(alice, edit(alice, 7), ErrorCode.BAD_REQUEST)
    await _err(
        alice,
        Send(rid=alice.rid(), cid=cid, cmid="k", kind=Kind.EDIT, body={"seq": 1, "body": {}}),
        ErrorCode.BAD_REQUEST,
    )
    clock.advance(EDIT_S + 1)
    await _err(alice, edit(alice, 1), ErrorCode.FORBIDDEN)

    assert (await _text(alice, cid, "after"))["seq"] == 3
    assert (await _pull(bob, cid))[0]["body"] == {"text": "t"}


# -- replies, mentions, forwards ---------------------------------------------------


async def test_reply_to_is_checked_stored_and_returned_everywhere(api: Api, connect: Any) -> None:
    _, _, cid, alice, bob = await _pair(api, connect)
    await _text(alice, cid, "question")
    await _msg(bob)

    await _text(bob, cid, "answer", reply_to=1)

    assert (await _msg(alice)).reply_to == 1
    assert (await _pull(alice, cid))[1]["reply_to"] == 1
    latest = await _ok(alice, History(rid=alice.rid(), cid=cid, limit=1))
    assert latest["msgs"][0]["reply_to"] == 1
    for bad in (3, 99):
        await _err(
            bob,
            Send(rid=bob.rid(), cid=cid, cmid=f"r{bad}", kind=1, body={"text": "x"}, reply_to=bad),
            ErrorCode.BAD_REQUEST,
        )
    await _ok(alice, Recall(rid=alice.rid(), cid=cid, cmid="rc", seq=1))
    await _err(
        bob,
        Send(rid=bob.rid(), cid=cid, cmid="late", kind=1, body={"text": "x"}, reply_to=1),
        ErrorCode.BAD_REQUEST,
    )
    assert (await _text(bob, cid, "next"))["seq"] == 4


async def test_mentions_must_be_members_and_at_all_is_for_owners_and_admins(
    api: Api, connect: Any
) -> None:
    owner, member, outsider = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, member)
    direct = await api.befriend(owner, outsider)
    cid = await api.group(owner, [member])
    o, m = await connect(owner.token), await connect(member.token)

    def send(conn: Raw, target: str, mentions: tuple[str, ...]) -> Send:
        return Send(
            rid=conn.rid(),
            cid=target,
            cmid=f"c{conn.rid()}",
            kind=1,
            body={"text": "@"},
            mentions=mentions,
        )

    await _err(m, send(m, cid, (outsider.id,)), ErrorCode.BAD_REQUEST)
    await _err(m, send(m, cid, ("@all",)), ErrorCode.BAD_REQUEST)
    await _err(o, send(o, direct, ("@all",)), ErrorCode.BAD_REQUEST)
    await _err(o, send(o, direct, (member.id,)), ErrorCode.BAD_REQUEST)
    ok = await _ok(o, send(o, cid, ("@all", member.id)))
    pushed = await _msg(m)
    assert pushed.mentions == ("@all", member.id)
    assert pushed.seq == ok["seq"]
    await _ok(o, send(o, direct, (outsider.id,)))
    stranger = await connect(outsider.token)
    await _err(stranger, send(stranger, cid, (member.id,)), ErrorCode.FORBIDDEN)
    replying = Send(rid=stranger.rid(), cid=cid, cmid="re", kind=1, body={"text": "x"}, reply_to=1)
    await _err(stranger, replying, ErrorCode.FORBIDDEN)
    # mentions is always an array: the bare string "@all" is refused, and takes no seq.
    rid = o.rid()
    bare = {"cid": cid, "cmid": "bare", "kind": 1, "body": {"text": "@all"}, "mentions": "@all"}
    await o.send(msgpack.packb([10, rid, bare]))
    refused = await o.reply(rid)
    assert isinstance(refused, Err)
    assert refused.code is ErrorCode.BAD_REQUEST
    assert "mentions" in refused.message
    after = await _ok(o, send(o, cid, ("@all",)))
    assert after["seq"] == ok["seq"] + 1


async def test_forward_is_a_checked_copy_marked_with_its_first_origin(
    api: Api, connect: Any
) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    ab = await api.befriend(alice, bob)
    bc = await api.befriend(bob, carol)
    a, b, c = [await connect(x.token) for x in (alice, bob, carol)]
    await _text(a, ab, "news")
    await _msg(b)

    def forward(conn: Raw, cid: str, source: dict[str, object], text: str = "news") -> Send:
        return Send(
            rid=conn.rid(),
            cid=cid,
            cmid=f"f{conn.rid()}",
            kind=1,
            body={"text": text},
            forward=source,
        )

    ack = await _ok(b, forward(b, bc, {"cid": ab, "seq": 1}))
    copy = await _msg(c)
    assert copy.forward == {"cid": ab, "seq": 1, "from": alice.id}
    assert (copy.body, copy.sender, copy.seq) == ({"text": "news"}, bob.id, ack["seq"])
    # A forward of the forward still names alice's original.
    await _ok(c, forward(c, bc, {"cid": bc, "seq": 1}))
    assert (await _msg(b)).forward == {"cid": ab, "seq": 1, "from": alice.id}
    # Refused: another body, a conversation carol is not in, no such message.
    await _err(b, forward(b, bc, {"cid": ab, "seq": 1}, "fake"), ErrorCode.BAD_REQUEST)
    await _err(c, forward(c, bc, {"cid": ab, "seq": 1}), ErrorCode.BAD_REQUEST)
    await _err(b, forward(b, bc, {"cid": ab, "seq": 5}), ErrorCode.BAD_REQUEST)
    assert (await _text(b, bc, "next"))["seq"] == 3


# -- history and hiding ------------------------------------------------------------


async def test_history_pages_both_ways_and_looks_up_by_mid(api: Api, connect: Any) -> None:
    _, _, cid, alice, bob = await _pair(api, connect)
    mids = [(await _text(alice, cid, f"m{i}"))["mid"] for i in range(1, 8)]

    latest = await _ok(bob, History(rid=bob.rid(), cid=cid, limit=3))
    older = await _ok(bob, History(rid=bob.rid(), cid=cid, before=5, limit=3))
    oldest = await _ok(bob, History(rid=bob.rid(), cid=cid, before=2, limit=3))
    newer = await _ok(bob, History(rid=bob.rid(), cid=cid, after=5, limit=3))

    assert ([m["seq"] for m in latest["msgs"]], latest["more"]) == ([5, 6, 7], True)
    assert ([m["seq"] for m in older["msgs"]], older["more"]) == ([2, 3, 4], True)
    assert ([m["seq"] for m in oldest["msgs"]], oldest["more"]) == ([1], False)
    assert ([m["seq"] for m in newer["msgs"]], newer["more"]) == ([6, 7], False)
    assert (latest["min_seq"], latest["max_seq"]) == (1, 7)
    found = await _ok(bob, History(rid=bob.rid(), mid=mids[3]))
    assert [m["seq"] for m in found["msgs"]] == [4]
    assert "cmid" not in found["msgs"][0]
    mine = await _ok(alice, History(rid=alice.rid(), mid=mids[3]))
    assert mine["msgs"][0]["cmid"] == "m4"


async def test_history_refuses_strangers_the_same_way_for_every_conversation(
    api: Api, connect: Any
) -> None:
    _, _, cid, alice, _ = await _pair(api, connect)
    mid = (await _text(alice, cid, "secret"))["mid"]
    stranger = await connect((await api.account()).token)

    await _err(stranger, History(rid=stranger.rid(), cid=cid), ErrorCode.FORBIDDEN)
    await _err(stranger, History(rid=stranger.rid(), cid="g:nope"), ErrorCode.FORBIDDEN)
    await _err(stranger, History(rid=stranger.rid(), mid=mid), ErrorCode.NOT_FOUND)
    await _err(stranger, History(rid=stranger.rid(), mid="nope"), ErrorCode.NOT_FOUND)
    await _err(stranger, Hide(rid=stranger.rid(), cid=cid, seqs=(1,)), ErrorCode.FORBIDDEN)
    await _err(stranger, History(rid=stranger.rid(), mid=mid), ErrorCode.NOT_FOUND)


async def test_hide_is_for_me_on_every_device_and_nobody_else(api: Api, connect: Any) -> None:
    alice, bob = await api.account(), await api.account()
    cid = await api.befriend(alice, bob)
    a = await connect(alice.token)
    phone = await connect(bob.token, device="phone")
    laptop = await connect(bob.token, device="laptop")
    sent = [await _text(a, cid, f"m{i}") for i in range(1, 5)]

    assert await _ok(phone, Hide(rid=phone.rid(), cid=cid, seqs=(2, 3, 2))) == {}
    await _ok(phone, Hide(rid=phone.rid(), cid=cid, seqs=(3,)))  # idempotent

    assert [m["seq"] for m in await _pull(laptop, cid)] == [1, 4]
    page = await _ok(laptop, History(rid=laptop.rid(), cid=cid, limit=2))
    assert ([m["seq"] for m in page["msgs"]], page["more"]) == ([1, 4], False)
    await _err(laptop, History(rid=laptop.rid(), mid=sent[1]["mid"]), ErrorCode.NOT_FOUND)
    assert [m["seq"] for m in await _pull(a, cid)] == [1, 2, 3, 4]
    await _err(phone, Hide(rid=phone.rid(), cid=cid, seqs=(1, 5)), ErrorCode.BAD_REQUEST)
    assert [m["seq"] for m in await _pull(laptop, cid)] == [1, 4]
    reply = await phone.request(Ping(rid=phone.rid()))
    assert isinstance(reply, Ok)


async def test_forwarded_image_passes_the_file_check_and_becomes_readable_downstream(
    api: Api, connect: Any
) -> None:
    alice, bob, carol = await api.account(), await api.account(), await api.account()
    ab = await api.befriend(alice, bob)
    bc = await api.befriend(bob, carol)
    a, b = await connect(alice.token), await connect(bob.token)
    file = await uploaded(api, alice, png(), "image/png")
    body = {
        "file": file["id"],
        "mime": file["content_type"],
        "size": file["size"],
        "width": file["width"],
        "height": file["height"],
    }
    await _ok(a, Send(rid=a.rid(), cid=ab, cmid="img", kind=Kind.IMAGE, body=body))
    assert (await content(api, carol, file["id"])).status_code == 404

    forward = {"cid": ab, "seq": 1}
    await _ok(b, Send(rid=b.rid(), cid=bc, cmid="fw", kind=Kind.IMAGE, body=body, forward=forward))

    assert (await content(api, carol, file["id"])).status_code == 200
    await _ok(a, Recall(rid=a.rid(), cid=ab, cmid="r", seq=1))
    assert (await content(api, carol, file["id"])).status_code == 200  # the copy stays
    again = Send(rid=b.rid(), cid=bc, cmid="fw2", kind=Kind.IMAGE, body=body, forward=forward)
    await _err(b, again, ErrorCode.BAD_REQUEST)
