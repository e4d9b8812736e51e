"""Every protocol-side limit of README.md and protocol/SPEC.md §10 at its edges.

Each limit is probed at max-1, max and max+1 through a real socket of one
``sandcat serve`` process shared by the module (tests/e2e/process.py); the
max+1 request gets the documented error and leaves nothing behind (no seq
taken, nothing hidden, nothing added). Request frames are written as raw
msgpack so that out-of-range values reach the server (the SDK's frame classes
refuse them on the client). Time windows are lowered to 1 s and probed at
0.5 s and 2 s. Upload limits are tested in tests/files.
"""

from __future__ import annotations

import gc
import itertools
import json
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgpack
import pytest
import trio
from trio_websocket import connect_websocket_url

from sandcat.client import HttpApi, HttpError
from sandcat.protocol import Err, ErrorCode, Ok, Op, Ping
from tests.client.cast import PASSWORD, Cast, Person
from tests.e2e.process import serve_in_background
from tests.gateway.raw import TIMEOUT_S, Raw

MAX_GROUP_MEMBERS = 5
#: The time limits, lowered: chat.recall_window_s, chat.edit_window_s,
#: signals.typing_interval_s, gateway.auth_timeout_s and calls.ring_timeout_s.
WINDOW_S = 1
CONFIG = f"""
[chat]
max_group_members = {MAX_GROUP_MEMBERS}
recall_window_s = {WINDOW_S}
edit_window_s = {WINDOW_S}

[signals]
typing_interval_s = {WINDOW_S}

[gateway]
auth_timeout_s = {WINDOW_S}

[calls]
ring_timeout_s = {WINDOW_S}
"""
_cmids = itertools.count(1)
#: People in the module: the group-size test needs an owner and max + 1 friends.
CROWD = MAX_GROUP_MEMBERS + 3


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One ``sandcat serve`` for the module, with the limits above."""
    root = tmp_path_factory.mktemp("limits")
    config = root / "sandcat.toml"
    config.write_text(CONFIG)
    with serve_in_background(root, "--config", str(config)) as found:
        yield found


class Crowd:
    """The module's people, made once: the server limits registrations and friend
    requests per client address, and every test here comes from 127.0.0.1. Tests
    share them (and their conversations), so they assert relative to what is there."""

    def __init__(self, people: list[Person]) -> None:
        self.people = people
        self._friends: set[tuple[str, str]] = set()

    def __getitem__(self, index: int) -> Person:
        return self.people[index]

    async def befriend(self, cast: Cast, a: Person, b: Person) -> str:
        """Make ``a`` and ``b`` friends unless they are; their direct cid."""
        low, high = sorted((a.id, b.id))
        if (low, high) not in self._friends:
            await cast.befriend(a, b)
            self._friends.add((low, high))
        return f"d:{low}:{high}"


@pytest.fixture(scope="module")
def crowd(urls: tuple[str, str]) -> Crowd:
    people = []
    with httpx.Client(base_url=urls[1], timeout=30) as http:
        for n in range(CROWD):
            username = f"limits{n}"
            body = {"username": username, "password": PASSWORD}
            assert http.post("/api/v1/auth/register", json=body).status_code == 201
            login = http.post("/api/v1/auth/login", json={"login": username, **body}).json()
            people.append(
                Person(id=login["user"]["id"], username=username, token=login["access_token"])
            )
    return Crowd(people)


@pytest.fixture
async def cast(urls: tuple[str, str]) -> AsyncIterator[Cast]:
    ws_url, http_url = urls
    async with HttpApi(http_url) as api:
        yield Cast(api, http_url=http_url, ws_url=ws_url)


class Socket:
    """Raw request frames over one HELLO'd connection."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw

    async def call(self, op: Op, **body: Any) -> Ok | Err:
        rid = self.raw.rid()
        await self.raw.send(msgpack.packb([op, rid, body], use_bin_type=True))
        reply = await self.raw.reply(rid)
        assert isinstance(reply, Ok | Err), reply
        return reply

    async def ok(self, op: Op, **body: Any) -> dict[str, Any]:
        reply = await self.call(op, **body)
        assert isinstance(reply, Ok), reply
        return dict(reply.body)

    async def refused(self, code: ErrorCode, op: Op, **body: Any) -> Err:
        reply = await self.call(op, **body)
        assert isinstance(reply, Err), reply
        assert reply.code == code, reply
        return reply

    async def send(self, cid: str, kind: int = 1, body: object = None, **extra: Any) -> Ok | Err:
        content = {"text": "hi"} if body is None else body
        return await self.call(
            Op.SEND, cid=cid, cmid=f"c{next(_cmids)}", kind=kind, body=content, **extra
        )

    async def max_seq(self, cid: str) -> int:
        return int((await self.ok(Op.PULL, cid=cid, after=0, limit=1))["max_seq"])


@pytest.fixture
async def connect(nursery: trio.Nursery, urls: tuple[str, str]) -> AsyncIterator[Any]:
    opened: list[Raw] = []

    async def open_socket(person: Person, device: str = "d1") -> Socket:
        with trio.fail_after(TIMEOUT_S):
            ws = await connect_websocket_url(nursery, urls[0], subprotocols=["sandcat.v1"])
        raw = Raw(ws)
        opened.append(raw)
        await raw.hello(person.token, device)
        return Socket(raw)

    yield open_socket
    with trio.move_on_after(TIMEOUT_S):
        for raw in opened:
            await raw.ws.aclose()
            await raw.ws._close_stream()


async def _accepted_then_refused(
    sock: Socket, cid: str, bodies: list[tuple[int, object]], over: tuple[int, object]
) -> None:
    """Each of ``bodies`` is stored with the next seq; ``over`` gets bad_request and no seq."""
    before = await sock.max_seq(cid)
    for n, (kind, body) in enumerate(bodies, start=1):
        reply = await sock.send(cid, kind, body)
        assert isinstance(reply, Ok), (kind, reply)
        assert reply.body["seq"] == before + n
    refused = await sock.send(cid, *over)
    assert isinstance(refused, Err), refused
    assert refused.code == ErrorCode.BAD_REQUEST
    assert await sock.max_seq(cid) == before + len(bodies)


# -- frame size ---------------------------------------------------------------------------


def _ping_of(size: int, rid: int) -> bytes:
    """A PING of exactly ``size`` bytes (an ignored body key pads it, SPEC.md §2)."""
    frame = msgpack.packb([Op.PING, rid, {"pad": b"x" * (size - 32)}], use_bin_type=True)
    frame = msgpack.packb(
        [Op.PING, rid, {"pad": b"x" * (size - 32 + size - len(frame))}], use_bin_type=True
    )
    assert len(frame) == size
    return bytes(frame)


async def test_frame_size_65536_passes_and_65537_closes_with_1009(
    cast: Cast, crowd: Crowd, connect: Any
) -> None:
    ann = crowd[0]
    sock = await connect(ann)
    for size in (65535, 65536):
        rid = sock.raw.rid()
        await sock.raw.send(_ping_of(size, rid))
        assert isinstance(await sock.raw.reply(rid), Ok), size
    await sock.raw.send(_ping_of(65537, sock.raw.rid()))
    assert await sock.raw.close_code() == 1009


# -- message bodies per kind ----------------------------------------------------------------


async def test_text_is_1_to_16384_bytes(cast: Cast, crowd: Crowd, connect: Any) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    # "é" is 2 bytes: the limit counts UTF-8 bytes, not characters.
    texts = ["x" * 16383, "x" * 16384, "é" * 8192, "x"]
    await _accepted_then_refused(
        sock, cid, [(1, {"text": t}) for t in texts], (1, {"text": "x" * 16385})
    )
    await _accepted_then_refused(sock, cid, [], (1, {"text": "é" * 8192 + "x"}))
    await _accepted_then_refused(sock, cid, [], (1, {"text": ""}))


async def test_custom_body_is_at_most_16384_bytes_of_msgpack(
    cast: Cast, crowd: Crowd, connect: Any
) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)

    def body_of(size: int) -> bytes:
        # bin 16 (3 header bytes) for these sizes: the encoding is size bytes.
        body = b"\x00" * (size - 3)
        assert len(msgpack.packb(body, use_bin_type=True)) == size
        return body

    await _accepted_then_refused(
        sock, cid, [(1000, body_of(16383)), (1000, body_of(16384))], (1000, body_of(16385))
    )


async def test_emoji_labels_and_place_names_at_their_edges(
    cast: Cast, crowd: Crowd, connect: Any
) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    # emoji: 1-64 UTF-8 bytes
    await _accepted_then_refused(
        sock,
        cid,
        [(6, {"emoji": ":" + "a" * 61 + ":"}), (6, {"emoji": ":" + "a" * 62 + ":"})],
        (6, {"emoji": ":" + "a" * 63 + ":"}),
    )
    # contact card labels: 1-64 printable chars
    await _accepted_then_refused(
        sock,
        cid,
        [(10, {"user": bob.id, "display_name": "B" * n}) for n in (63, 64)],
        (10, {"user": bob.id, "display_name": "B" * 65}),
    )
    # location name and address: 1-255 chars
    await _accepted_then_refused(
        sock,
        cid,
        [(7, {"lat": 1, "lon": 2, "name": "n" * n, "address": "a" * n}) for n in (254, 255)],
        (7, {"lat": 1, "lon": 2, "name": "n" * 256}),
    )


# -- counts -------------------------------------------------------------------------------


async def test_mentions_hold_at_most_100_entries(cast: Cast, crowd: Crowd, connect: Any) -> None:
    ann, bob, cat = crowd[0], crowd[1], crowd[2]
    for friend in (bob, cat):
        await crowd.befriend(cast, ann, friend)
    cid = await cast.group(ann, [bob, cat])
    sock = await connect(ann)
    before = await sock.max_seq(cid)
    names = itertools.cycle([bob.id, cat.id, "@all"])
    for count in (99, 100):
        mentions = list(itertools.islice(names, count))
        reply = await sock.send(cid, mentions=mentions)
        assert isinstance(reply, Ok), (count, reply)
    refused = await sock.send(cid, mentions=list(itertools.islice(names, 101)))
    assert isinstance(refused, Err)
    assert refused.code == ErrorCode.BAD_REQUEST
    assert "mentions" in refused.message
    assert await sock.max_seq(cid) == before + 2


async def test_group_size_is_chat_max_group_members(cast: Cast, crowd: Crowd) -> None:
    api = cast.api
    owner, friends = crowd[0], crowd.people[1 : MAX_GROUP_MEMBERS + 2]
    for friend in friends:
        await crowd.befriend(cast, owner, friend)
    ids = [f.id for f in friends]
    # creator included: max-1 and max members are created, max+1 refused
    for size in (MAX_GROUP_MEMBERS - 1, MAX_GROUP_MEMBERS):
        group = await api.create_group(owner.token, "g", ids[: size - 1])
        assert group.members is not None
        assert len(group.members) == size
    before = await api.groups(owner.token)
    with pytest.raises(HttpError) as too_big:
        await api.create_group(owner.token, "g", ids[:MAX_GROUP_MEMBERS])
    assert (too_big.value.status, too_big.value.field) == (422, "members")
    assert len(await api.groups(owner.token)) == len(before)

    # an invitation fills the group up to max, then 409 and nobody is added
    group = await api.create_group(owner.token, "g", ids[: MAX_GROUP_MEMBERS - 2])
    invited = await api.invite(owner.token, group.id, [ids[MAX_GROUP_MEMBERS - 2]])
    assert invited.added == (ids[MAX_GROUP_MEMBERS - 2],)
    with pytest.raises(HttpError) as full:
        await api.invite(owner.token, group.id, [ids[MAX_GROUP_MEMBERS - 1]])
    assert full.value.status == 409
    assert (await api.group_members(owner.token, group.id)).total == MAX_GROUP_MEMBERS

    # max_members: 2 ... chat.max_group_members (on a group of two)
    pair = await api.create_group(owner.token, "pair", ids[:1])
    for value in (2, MAX_GROUP_MEMBERS - 1, MAX_GROUP_MEMBERS):
        configured = await api.configure_group(owner.token, pair.id, max_members=value)
        assert configured.max_members == value
    for value in (1, MAX_GROUP_MEMBERS + 1):
        with pytest.raises(HttpError) as refused:
            await api.configure_group(owner.token, pair.id, max_members=value)
        assert (refused.value.status, refused.value.field) == (422, "max_members")
    assert (await api.group(owner.token, pair.id)).max_members == MAX_GROUP_MEMBERS


async def test_group_user_lists_hold_at_most_100_ids(cast: Cast, crowd: Crowd) -> None:
    api = cast.api
    owner = crowd[1]
    group = await api.create_group(owner.token, "g", [])

    def users(count: int) -> list[str]:
        return [f"u{n}" for n in range(count)]

    for count in (99, 100):
        page = await api.group_members(owner.token, group.id, users=users(count))
        assert page.members == ()
        # a list of 99 or 100 passes the count and is refused for its content
        with pytest.raises(HttpError) as strangers:
            await api.invite(owner.token, group.id, users(count))
        assert (strangers.value.status, strangers.value.field) == (403, "users")
        with pytest.raises(HttpError) as outsiders:
            await api.remove_members(owner.token, group.id, users(count))
        assert (outsiders.value.status, outsiders.value.field) == (404, "users")
        for ban in (api.ban_users, api.unban_users):
            with pytest.raises(HttpError) as unknown:
                await ban(owner.token, group.id, users(count))
            assert (unknown.value.status, unknown.value.field) == (404, "users")
    for call in (
        api.group_members(owner.token, group.id, users=users(101)),
        api.invite(owner.token, group.id, users(101)),
        api.remove_members(owner.token, group.id, users(101)),
        api.ban_users(owner.token, group.id, users(101)),
        api.unban_users(owner.token, group.id, users(101)),
    ):
        with pytest.raises(HttpError) as refused:
            await call
        assert (refused.value.status, refused.value.field) == (422, "users")
    assert (await api.group_members(owner.token, group.id)).total == 1
    assert (await api.group_bans(owner.token, group.id)).total == 0

    # the bans page: limit 1-200; an invite link's max_uses: 1-100000
    for limit in (199, 200):
        assert (await api.group_bans(owner.token, group.id, limit=limit)).bans == ()
    for limit in (0, 201):
        with pytest.raises(HttpError) as refused:
            await api.group_bans(owner.token, group.id, limit=limit)
        assert (refused.value.status, refused.value.field) == (422, "limit")
    for uses in (1, 99_999, 100_000):
        assert (await api.create_invite(owner.token, group.id, max_uses=uses)).max_uses == uses
    for uses in (0, 100_001):
        with pytest.raises(HttpError) as refused:
            await api.create_invite(owner.token, group.id, max_uses=uses)
        assert (refused.value.status, refused.value.field) == (422, "max_uses")
    assert len(await api.group_invites(owner.token, group.id)) == 3


# -- page sizes ----------------------------------------------------------------------------


async def test_page_sizes_over_the_socket_and_over_http(
    cast: Cast, crowd: Crowd, connect: Any
) -> None:
    api = cast.api
    ann, bob, cat = crowd[4], crowd[5], crowd[6]
    cid = await crowd.befriend(cast, ann, bob)
    await crowd.befriend(cast, ann, cat)
    gcid = await cast.group(ann, [bob, cat])
    sock = await connect(ann)
    # 201 messages, pipelined
    for n in range(201):
        await sock.raw.send(
            msgpack.packb(
                [
                    Op.SEND,
                    10_000 + n,
                    {"cid": cid, "cmid": f"p{n}", "kind": 1, "body": {"text": "m"}},
                ],
                use_bin_type=True,
            )
        )
    for n in range(201):
        assert isinstance(await sock.raw.reply(10_000 + n), Ok)

    for op, extra in ((Op.PULL, {"after": 0}), (Op.HISTORY, {"after": 0})):
        for limit in (199, 200):
            page = await sock.ok(op, cid=cid, limit=limit, **extra)
            assert (len(page["msgs"]), page["more"]) == (limit, True)
        for limit in (0, 201):
            await sock.refused(ErrorCode.BAD_REQUEST, op, cid=cid, limit=limit, **extra)
    for limit in (199, 200):
        assert len((await api.messages(ann.token, cid, after=0, limit=limit)).msgs) == limit
    for limit in (0, 201):
        with pytest.raises(HttpError) as refused:
            await api.messages(ann.token, cid, after=0, limit=limit)
        assert (refused.value.status, refused.value.field) == (422, "limit")

    # SYNC and the conversation list: 1-1000
    everything = len((await sock.ok(Op.SYNC))["convs"])
    for limit in (999, 1000):
        assert len((await sock.ok(Op.SYNC, limit=limit))["convs"]) == everything
        assert len((await api.conversations(ann.token, limit=limit)).conversations) == everything
    for limit in (0, 1001):
        await sock.refused(ErrorCode.BAD_REQUEST, Op.SYNC, limit=limit)
        with pytest.raises(HttpError) as refused:
            await api.conversations(ann.token, limit=limit)
        assert refused.value.status == 422

    # the inbox: 1-200
    for limit in (199, 200):
        assert (await sock.ok(Op.INBOX_PULL, after=0, limit=limit))["notices"]
        assert (await api.inbox(ann.token, after=0, limit=limit)).notices
    for limit in (0, 201):
        await sock.refused(ErrorCode.BAD_REQUEST, Op.INBOX_PULL, after=0, limit=limit)
        with pytest.raises(HttpError) as refused:
            await api.inbox(ann.token, after=0, limit=limit)
        assert refused.value.status == 422

    # READERS: 1-500
    for limit in (499, 500):
        page = await sock.ok(Op.READERS, cid=gcid, seq=1, limit=limit)
        assert len(page["read"]) + len(page["unread"]) == 3
        http_page = await api.readers(ann.token, gcid, 1, limit=limit)
        assert len(http_page.read) + len(http_page.unread) == 3
    for limit in (0, 501):
        await sock.refused(ErrorCode.BAD_REQUEST, Op.READERS, cid=gcid, seq=1, limit=limit)
        with pytest.raises(HttpError) as refused:
            await api.readers(ann.token, gcid, 1, limit=limit)
        assert refused.value.status == 422

    # search: limit 1-50, offset 0-1000; group members: limit 1-200
    for limit, offset in ((49, 999), (50, 1000)):
        assert (await api.search_users(ann.token, "cat", limit=limit, offset=offset)).users == ()
    for limit, offset in ((51, 0), (0, 0), (1, 1001)):
        with pytest.raises(HttpError) as refused:
            await api.search_users(ann.token, "cat", limit=limit, offset=offset)
        assert refused.value.status == 422
    group = gcid.removeprefix("g:")
    for limit in (199, 200):
        assert (await api.group_members(ann.token, group, limit=limit)).total == 3
    for limit in (0, 201):
        with pytest.raises(HttpError) as refused:
            await api.group_members(ann.token, group, limit=limit)
        assert refused.value.status == 422


async def test_hide_takes_1_to_200_seqs(cast: Cast, crowd: Crowd, connect: Any) -> None:
    api = cast.api
    ann, bob = crowd[6], crowd[7]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    base = await sock.max_seq(cid)
    for n in range(201):
        body = {"cid": cid, "cmid": f"h{n}", "kind": 1, "body": {"text": "m"}}
        await sock.raw.send(msgpack.packb([Op.SEND, 10_000 + n, body], use_bin_type=True))
    for n in range(201):
        assert isinstance(await sock.raw.reply(10_000 + n), Ok)
    # 201 distinct seqs that exist: refused for their count alone
    over = list(range(base + 1, base + 202))
    every = over[:200]

    async def visible(who: Person) -> int:
        page = await api.messages(who.token, cid, after=base, limit=200)
        return sum(m.seq in every for m in page.msgs)

    # over the limit: refused, nothing hidden
    await sock.refused(ErrorCode.BAD_REQUEST, Op.HIDE, cid=cid, seqs=over)
    await sock.refused(ErrorCode.BAD_REQUEST, Op.HIDE, cid=cid, seqs=[])
    with pytest.raises(HttpError) as refused:
        await api.hide_messages(ann.token, cid, over)
    assert (refused.value.status, refused.value.field) == (422, "seqs")
    assert await visible(ann) == 200
    # 199 over the socket, then 200 (one new) over HTTP
    await sock.ok(Op.HIDE, cid=cid, seqs=every[:199])
    assert await visible(ann) == 1
    await api.hide_messages(ann.token, cid, every)
    assert await visible(ann) == 0
    assert await visible(bob) == 200


# -- windows ----------------------------------------------------------------------------------


async def test_recall_and_edit_windows_at_half_and_twice(
    cast: Cast, crowd: Crowd, connect: Any
) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    sent = trio.current_time()
    seqs = []
    for n in range(4):
        reply = await sock.send(cid, body={"text": f"m{n}"})
        assert isinstance(reply, Ok)
        seq = reply.body["seq"]
        assert isinstance(seq, int)
        seqs.append(seq)
    await trio.sleep_until(sent + 0.5 * WINDOW_S)
    await sock.ok(Op.RECALL, cid=cid, cmid="r1", seq=seqs[0])
    await sock.ok(Op.EDIT, cid=cid, cmid="e1", seq=seqs[1], body={"text": "edited"})
    top = await sock.max_seq(cid)
    await trio.sleep_until(sent + 2 * WINDOW_S)
    await sock.refused(ErrorCode.FORBIDDEN, Op.RECALL, cid=cid, cmid="r2", seq=seqs[2])
    await sock.refused(
        ErrorCode.FORBIDDEN, Op.EDIT, cid=cid, cmid="e2", seq=seqs[3], body={"text": "late"}
    )
    assert await sock.max_seq(cid) == top
    page = await cast.api.messages(bob.token, cid, after=seqs[0] - 1)
    bodies = {m.seq: m.body for m in page.msgs}
    assert (bodies[seqs[0]], bodies[seqs[1]]) == (None, {"text": "edited"})
    assert (bodies[seqs[2]], bodies[seqs[3]]) == ({"text": "m2"}, {"text": "m3"})


async def test_typing_interval_at_half_and_twice(cast: Cast, crowd: Crowd, connect: Any) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    start = trio.current_time()
    await sock.ok(Op.TYPING, cid=cid, active=True)
    await trio.sleep_until(start + 0.5 * WINDOW_S)
    limited = await sock.refused(ErrorCode.RATE_LIMITED, Op.TYPING, cid=cid, active=True)
    assert limited.retry_after_ms is not None
    assert 0 < limited.retry_after_ms <= WINDOW_S * 1000
    await trio.sleep_until(start + 2 * WINDOW_S)
    await sock.ok(Op.TYPING, cid=cid, active=True)


async def test_hello_deadline_at_half_and_twice(crowd: Crowd, urls: tuple[str, str]) -> None:
    async with trio.open_nursery() as nursery:
        early, late = [
            Raw(await connect_websocket_url(nursery, urls[0], subprotocols=["sandcat.v1"]))
            for _ in range(2)
        ]
        try:
            await trio.sleep(0.5 * WINDOW_S)
            await early.hello(crowd[0].token, "early")
            await trio.sleep(1.5 * WINDOW_S)
            assert await late.close_code() == 4003
            assert isinstance(await early.request(Ping(rid=early.rid())), Ok)
        finally:
            for raw in (early, late):
                await raw.ws.aclose()
                await raw.ws._close_stream()


async def test_ring_timeout_at_half_and_twice(cast: Cast, crowd: Crowd, connect: Any) -> None:
    ann, bob = crowd[2], crowd[4]
    cid = await crowd.befriend(cast, ann, bob)
    caller, callee = await connect(ann, "ring1"), await connect(bob, "ring1")
    before = await caller.max_seq(cid)
    answered = (await caller.ok(Op.CALL, action="invite", peer=bob.id, media="audio"))["call"]
    await trio.sleep(0.5 * WINDOW_S)
    await callee.ok(Op.CALL, action="accept", call=answered)
    await caller.ok(Op.CALL, action="hangup", call=answered)
    missed = (await caller.ok(Op.CALL, action="invite", peer=bob.id, media="audio"))["call"]
    await trio.sleep(2 * WINDOW_S)
    await callee.refused(ErrorCode.NOT_FOUND, Op.CALL, action="accept", call=missed)
    logs = (await caller.ok(Op.PULL, cid=cid, after=before))["msgs"]
    assert [(m["body"]["call"], m["body"]["outcome"]) for m in logs] == [
        (answered, "completed"),
        (missed, "missed"),
    ]


# -- field sizes of SPEC.md §10 ----------------------------------------------------------------


async def test_cmid_is_1_to_64_bytes(cast: Cast, crowd: Crowd, connect: Any) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    before = await sock.max_seq(cid)
    for cmid in ("a" * 63, "b" * 64, "é" * 32):
        await sock.ok(Op.SEND, cid=cid, cmid=cmid, kind=1, body={"text": "x"})
    for cmid in ("c" * 65, "é" * 32 + "x", ""):
        await sock.refused(
            ErrorCode.BAD_REQUEST, Op.SEND, cid=cid, cmid=cmid, kind=1, body={"text": "x"}
        )
    assert await sock.max_seq(cid) == before + 3


def _depth(value: object) -> int:
    """msgpack nesting depth as SPEC.md §10 counts it (the envelope array is 1)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


async def test_envelope_limits_rid_depth_kind_and_seq(
    cast: Cast, crowd: Crowd, connect: Any
) -> None:
    ann, bob = crowd[0], crowd[1]
    cid = await crowd.befriend(cast, ann, bob)
    sock = await connect(ann)
    before = await sock.max_seq(cid)
    # kind < 2^31
    for kind in (2**31 - 2, 2**31 - 1):
        await sock.ok(Op.SEND, cid=cid, cmid=f"k{kind}", kind=kind, body=None)
    await sock.refused(ErrorCode.BAD_REQUEST, Op.SEND, cid=cid, cmid="k", kind=2**31, body=None)
    # seq < 2^53
    for after in (2**53 - 2, 2**53 - 1):
        assert (await sock.ok(Op.PULL, cid=cid, after=after))["msgs"] == []
    await sock.refused(ErrorCode.BAD_REQUEST, Op.PULL, cid=cid, after=2**53)
    # nesting depth 16
    for depth in (15, 16):
        body: object = []
        for _ in range(depth - 3):  # the envelope and the body map are two levels
            body = [body]
        assert _depth([Op.SEND, 0, {"body": body}]) == depth
        await sock.ok(Op.SEND, cid=cid, cmid=f"d{depth}", kind=1000, body=body)
    assert await sock.max_seq(cid) == before + 4
    # rid 1 ... 2^32-1
    for rid in (2**32 - 2, 2**32 - 1):
        await sock.raw.send(msgpack.packb([Op.PING, rid, {}]))
        assert isinstance(await sock.raw.reply(rid), Ok)
    deep: object = [[[[[[[[[[[[[[[]]]]]]]]]]]]]]]  # 15 lists: depth 17 in a SEND
    await sock.raw.send(
        msgpack.packb([Op.SEND, 5, {"cid": cid, "cmid": "deep", "kind": 1000, "body": deep}])
    )
    assert _depth([0, 0, {"body": deep}]) == 17
    assert await sock.raw.close_code() == 1007
    again = await connect(ann, "d2")
    assert await again.max_seq(cid) == before + 4
    await again.raw.send(msgpack.packb([Op.PING, 2**32, {}]))
    assert await again.raw.close_code() == 1007


async def test_hello_fields_token_device_and_platform(
    cast: Cast, crowd: Crowd, urls: tuple[str, str]
) -> None:
    ann = crowd[0]

    async def hello(**body: object) -> object:
        async with trio.open_nursery() as nursery:
            ws = await connect_websocket_url(nursery, urls[0], subprotocols=["sandcat.v1"])
            raw = Raw(ws)
            fields = {"token": ann.token, "device": "d", "platform": "p", **body}
            await raw.send(msgpack.packb([Op.HELLO, 1, fields]))
            try:
                return await raw.reply(1)
            finally:
                await ws.aclose()
                # trio-websocket keeps its socket when the server closed first (a bad HELLO).
                await ws._close_stream()

    with trio.fail_after(TIMEOUT_S * 4):
        for device in ("a" * 63, "b" * 64):
            assert isinstance(await hello(device=device), Ok)
        for platform in ("p" * 63, "p" * 64):
            assert isinstance(await hello(platform=platform), Ok)
        for over in ({"device": "c" * 65}, {"platform": "p" * 65}, {"token": "t" * 4097}):
            refused = await hello(**over)
            assert isinstance(refused, Err)
            assert refused.code == ErrorCode.BAD_REQUEST, over
        # a 4096-char token passes the size check and is refused as a token
        wrong = await hello(token="t" * 4096)
        assert isinstance(wrong, Err)
        assert wrong.code == ErrorCode.UNAUTHORIZED


async def test_call_sdp_and_candidate_sizes(cast: Cast, crowd: Crowd, connect: Any) -> None:
    ann, bob = crowd[2], crowd[3]
    await crowd.befriend(cast, ann, bob)
    caller, callee = await connect(ann), await connect(bob)
    call = (await caller.ok(Op.CALL, action="invite", peer=bob.id, media="audio"))["call"]
    await callee.ok(Op.CALL, action="accept", call=call)
    for size in (16383, 16384):
        await caller.ok(Op.CALL, action="offer", call=call, sdp="v" * size)
    await caller.refused(ErrorCode.BAD_REQUEST, Op.CALL, action="offer", call=call, sdp="v" * 16385)
    await caller.refused(ErrorCode.BAD_REQUEST, Op.CALL, action="offer", call=call, sdp="")
    for size in (1023, 1024):
        candidate = {"candidate": "c" * size}
        await caller.ok(Op.CALL, action="candidate", call=call, candidate=candidate)
    await caller.refused(
        ErrorCode.BAD_REQUEST,
        Op.CALL,
        action="candidate",
        call=call,
        candidate={"candidate": "c" * 1025},
    )
    await caller.ok(Op.CALL, action="hangup", call=call)


async def test_a_json_body_is_at_most_http_max_body_bytes(cast: Cast, crowd: Crowd) -> None:
    """``http.max_body_bytes`` (1 MiB by default) for JSON routes; uploads have their own."""
    ann = crowd[0]
    limit = 1024 * 1024

    def padded(signature: str, size: int) -> bytes:
        # JSON allows whitespace after the value: pad to exactly ``size`` bytes.
        body = json.dumps({"signature": signature}).encode()
        return body + b" " * (size - len(body))

    headers = {"Authorization": f"Bearer {ann.token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=cast.http_url, timeout=30) as http:
        for size, signature in ((limit - 1, "one"), (limit, "two")):
            reply = await http.patch(
                "/api/v1/users/me", content=padded(signature, size), headers=headers
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["user"]["signature"] == signature
        over = await http.patch(
            "/api/v1/users/me", content=padded("three", limit + 1), headers=headers
        )
        assert over.status_code == 413
        assert over.json()["error"]["code"] == "too_large"
    # The server answers 413 before reading the whole body, so httpx leaves its
    # request-body async generator unfinished. Collect it here, where its
    # ResourceWarning (a client-side artefact) is expected, not in whatever test
    # the garbage collector happens to run in next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del over, reply
        gc.collect()
    assert (await cast.api.me(ann.token)).signature == "two"
