"""A 300-member group on a real ``sandcat serve`` process: every member, connected
over its own WebSocket, receives every message exactly once, in seq order, and
all members see the same seq for the same message.

Setup takes a test-only fast path: the 300 accounts, their sessions and the
owner's friendships are written straight into the database before the server
starts (registering over HTTP costs two argon2 hashes per user), and the
access tokens are minted with the server's configured secret. The group is
created over HTTP, and every send and receive goes over real sockets.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio
from trio_websocket import WebSocketConnection, connect_websocket_url

from sandcat.clock import system_clock
from sandcat.domain.tokens import Tokens
from sandcat.protocol import Hello, Msg, Ok, Send, decode_server, encode
from sandcat.store.sqlite import open_database
from tests.e2e.process import serve_process

MEMBERS = 300
SENDERS = 8
PER_SENDER = 15
SECRET = "big-group-test-secret-" + "x" * 16
_NOW = 1_700_000_000_000


def _populate(path: Path, users: list[str]) -> None:
    """Accounts, live sessions (family = user id) and the owner's friendships."""
    owner = users[0]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO users (id, username, username_key, password_hash, display_name, "
            "created_at, updated_at) VALUES (?, ?, ?, 'x', ?, ?, ?)",
            [(u, u.lower(), u.lower(), u, _NOW, _NOW) for u in users],
        )
        conn.executemany(
            "INSERT INTO sessions (id, user_id, device, platform, family, refresh_hash, "
            "created_at, last_used_at, expires_at) VALUES (?, ?, 'd1', 'test', ?, ?, ?, ?, ?)",
            [(u, u, u, secrets.token_hex(16), _NOW, _NOW, 2**52) for u in users],
        )
        conn.executemany(
            "INSERT INTO friends (user_id, friend_id, since, version) VALUES (?, ?, ?, 1)",
            [pair for u in users[1:] for pair in ((owner, u, _NOW), (u, owner, _NOW))],
        )


@dataclass
class Member:
    user: str
    ws: WebSocketConnection
    #: (seq, mid, from) of every MSG pushed, in arrival order.
    pushed: list[tuple[int, str, str]] = field(default_factory=list)
    #: seq and mid of this member's own acked sends.
    acked: list[tuple[int, str]] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)

    async def read(self, expected: int) -> None:
        while len(self.pushed) + len(self.acked) < expected:
            frame = decode_server(bytes(await self.ws.get_message()))
            if isinstance(frame, Msg):
                self.pushed.append((frame.seq, frame.mid, frame.sender))
            elif isinstance(frame, Ok) and "seq" in frame.body:
                self.acked.append((int(frame.body["seq"]), str(frame.body["mid"])))
            else:
                raise AssertionError(f"unexpected frame {frame!r}")
        self.done.set()


async def test_every_member_of_a_300_member_group_gets_every_message_once_in_order(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    users = [f"U{index:03d}" for index in range(MEMBERS)]
    async with open_database(data / "sandcat.db", synchronous="OFF"):
        pass  # create and migrate the schema
    await trio.to_thread.run_sync(_populate, data / "sandcat.db", users)
    tokens = Tokens(SECRET.encode(), access_ttl_s=900, clock=system_clock)
    token = {u: tokens.issue_access(user=u, device="d1", session=u).token for u in users}
    total = SENDERS * PER_SENDER
    with trio.fail_after(60):
        async with (
            serve_process(data, env={"SANDCAT_TOKEN_SECRET": SECRET}) as served,
            httpx.AsyncClient(base_url=served.http_url, timeout=30) as http,
            trio.open_nursery() as nursery,
        ):
            reply = await http.post(
                "/api/v1/groups",
                json={"name": "everyone", "members": users[1:]},
                headers={"Authorization": f"Bearer {token[users[0]]}"},
            )
            assert reply.status_code == 201, reply.text
            cid = reply.json()["group"]["cid"]
            members: list[Member] = []
            limiter = trio.CapacityLimiter(32)

            async def join(user: str) -> None:
                async with limiter:
                    ws = await connect_websocket_url(
                        nursery, served.ws_url, subprotocols=["sandcat.v1"]
                    )
                    await ws.send_message(
                        encode(Hello(rid=1, token=token[user], device="d1", platform="test"))
                    )
                    assert isinstance(decode_server(bytes(await ws.get_message())), Ok)
                    members.append(Member(user, ws))

            async with trio.open_nursery() as joining:
                for user in users:
                    joining.start_soon(join, user)
            assert len(members) == MEMBERS
            for member in members:
                nursery.start_soon(member.read, total)
            senders = members[:SENDERS]

            async def send_all(sender: Member) -> None:
                for n in range(PER_SENDER):
                    body = {"text": f"{sender.user} {n}"}
                    frame = Send(rid=n + 2, cid=cid, cmid=f"m{n}", kind=1, body=body)
                    await sender.ws.send_message(encode(frame))

            async with trio.open_nursery() as sending:
                for sender in senders:
                    sending.start_soon(send_all, sender)
            for member in members:
                await member.done.wait()
            for member in members:
                await member.ws.aclose()

    timeline = sorted(
        {(seq, mid) for member in members for seq, mid, _ in member.pushed}
        | {entry for sender in senders for entry in sender.acked}
    )
    assert [seq for seq, _ in timeline] == list(range(1, total + 1))  # no hole, one mid per seq
    for member in members:
        seqs = [seq for seq, _, _ in member.pushed]
        assert seqs == sorted(seqs), member.user  # in order
        own = {seq for seq, _ in member.acked}
        assert sorted([*seqs, *own]) == list(range(1, total + 1)), member.user  # each exactly once
        assert all(sender != member.user for _, _, sender in member.pushed)
        assert {(seq, mid) for seq, mid, _ in member.pushed} <= set(timeline)
