"""Recovery against a real server: holes, network loss, lost acks, restarts, resume.

The network is broken on cue by a TCP proxy between the session and the
server (`tests.client.proxy`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from sandcat.app import Server, run_server
from sandcat.client import HttpApi, Session, open_session
from sandcat.protocol import CloseCode
from tests.client.cast import Cast, take
from tests.client.proxy import Proxy
from tests.passwords import FAST_PASSWORDS
from tests.scene import make_config


@pytest.fixture
async def proxy(server: Server, nursery: trio.Nursery) -> Proxy:
    proxy = Proxy(server.ws_port)
    await nursery.start(proxy.serve)
    return proxy


async def wait_until(condition: Callable[[], bool]) -> None:
    # Polling: the statistics are plain counters, with nothing to wait on.
    while not condition():  # noqa: ASYNC110
        await trio.sleep(0.01)


def disconnected(session: Session) -> Callable[[], bool]:
    return lambda: len(session.statistics().close_codes) > 0


async def test_dropped_pushes_are_detected_as_a_gap_and_pulled(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "a") as a, cast.client(bob, "b") as b:
            b.session.drop_push = lambda msg: msg.seq in (2, 3)
            acks = [await a.session.send(cid, text=f"m{i}") for i in range(1, 6)]
            got = await take(b.session, 5)
            assert [(m.seq, m.mid) for m in got] == [(ack.seq, ack.mid) for ack in acks]
            assert [m.body for m in got] == [{"text": f"m{i}"} for i in range(1, 6)]
            stats = b.session.statistics()
            assert stats.pulls >= 1
            assert stats.pushes == 3


async def test_messages_sent_while_offline_are_backfilled_then_pending_sends_resent(
    cast: Cast, proxy: Proxy
) -> None:
    with trio.fail_after(15):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "a", ws_url=proxy.ws_url) as a, cast.client(bob, "b") as b:
            await a.session.send(cid, text="before")
            assert [m.seq for m in await take(a.session, 1)] == [1]

            proxy.online = False
            proxy.cut()
            await wait_until(disconnected(a.session))
            for i in range(5):
                await b.session.send(cid, text=f"while away {i}")
            async with trio.open_nursery() as nursery:
                acks = []

                async def send_offline() -> None:
                    acks.append(await a.session.send(cid, text="typed offline"))

                nursery.start_soon(send_offline)
                await wait_until(lambda: a.session.statistics().sends_pending == 1)
                await trio.sleep(0.2)  # a few failed reconnects
                proxy.online = True
            assert acks[0].seq == 7  # stored after what arrived while away

            got = await take(a.session, 6)
            assert [m.seq for m in got] == [2, 3, 4, 5, 6, 7]
            assert [m.body for m in got[:5]] == [{"text": f"while away {i}"} for i in range(5)]
            assert (got[5].cmid, got[5].device) == (acks[0].cmid, "a")
            stats = a.session.statistics()
            assert stats.connects == 2
            assert stats.pulls >= 1


async def test_a_send_whose_ack_was_lost_is_resent_and_gets_the_original_ack(
    cast: Cast, proxy: Proxy
) -> None:
    with trio.fail_after(15):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(ann, "a", ws_url=proxy.ws_url) as a, cast.client(bob, "b") as b:
            proxy.mute = True  # the server's answers to ann vanish
            async with trio.open_nursery() as nursery:
                acks = []

                async def send() -> None:
                    acks.append(await a.session.send(cid, text="did it arrive?"))

                nursery.start_soon(send)
                [stored] = await take(b.session, 1)  # committed, but ann never heard
                proxy.cut()
                proxy.mute = False
            [ack] = acks
            assert (ack.seq, ack.mid, ack.ts) == (stored.seq, stored.mid, stored.ts)
            assert a.session.statistics().resends >= 1

            await a.session.send(cid, text="next")
            assert [m.seq for m in await take(a.session, 2)] == [1, 2]  # seq 1 once
            assert [m.seq for m in await take(b.session, 1)] == [2]


async def test_goaway_then_restart_reconnects_and_resends(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        config = make_config(tmp_path / "data")

        stopped: list[trio.Event] = []

        async def start() -> Server:
            done = trio.Event()
            stopped.append(done)

            async def run(task_status: trio.TaskStatus[Server]) -> None:
                try:
                    await run_server(config, passwords=FAST_PASSWORDS, task_status=task_status)
                finally:
                    done.set()

            server: Server = await nursery.start(run)
            return server

        first = await start()
        proxy = Proxy(first.ws_port)
        await nursery.start(proxy.serve)
        http_url = f"http://127.0.0.1:{first.http_port}"
        async with HttpApi(http_url) as api:
            cast = Cast(api, http_url=http_url, ws_url=proxy.ws_url)
            ann, bob = await cast.person("ann"), await cast.person("bob")
            cid = await cast.befriend(ann, bob)
            async with cast.client(ann, "a") as a, cast.client(bob, "b") as b:
                await a.session.send(cid, text="before the restart")
                await take(b.session, 1)

                first.shutdown()  # GOAWAY, then close 1001
                await wait_until(disconnected(a.session))
                assert a.session.statistics().close_codes[0] == CloseCode.GOING_AWAY
                # A restart: the first server is gone (and has let go of the
                # SQLite database) before the second opens it.
                await stopped[0].wait()
                second = await start()  # same data directory, new port
                async with trio.open_nursery() as sends:
                    acks = []

                    async def send() -> None:
                        acks.append(await a.session.send(cid, text="during the restart"))

                    sends.start_soon(send)
                    await trio.sleep(0.2)
                    proxy.target_port = second.ws_port
                assert acks[0].seq == 2
                [got] = await take(b.session, 1)
                assert (got.seq, got.mid) == (2, acks[0].mid)
                assert a.session.statistics().connects == 2
                assert [m.seq for m in await take(a.session, 2)] == [1, 2]
            second.shutdown()


async def test_a_session_resumes_from_saved_positions(cast: Cast) -> None:
    with trio.fail_after(10):
        ann, bob = await cast.person("ann"), await cast.person("bob")
        cid = await cast.befriend(ann, bob)
        async with cast.client(bob, "b") as b:
            async with cast.client(ann, "a") as a:
                await b.session.send(cid, text="one")
                await take(a.session, 1)
                positions = a.session.positions()
            assert positions == {cid: 1}
            for text in ("two", "three"):
                await b.session.send(cid, text=text)
            async with cast.client(ann, "a", positions=positions) as a:
                got = await take(a.session, 2)
                assert [(m.seq, m.body) for m in got] == [
                    (2, {"text": "two"}),
                    (3, {"text": "three"}),
                ]
            # Without positions a session starts at the newest message.
            async with cast.client(ann, "a") as a:
                await b.session.send(cid, text="four")
                assert [m.seq for m in await take(a.session, 1)] == [4]


class _BadThenGood:
    """Credentials whose first token the server refuses."""

    def __init__(self, good: str) -> None:
        self.good = good
        self.renewals = 0

    @property
    def renew_at(self) -> float | None:
        return None

    async def access_token(self, *, renew: bool = False) -> str:
        if not renew:
            return "expired-or-bogus"
        self.renewals += 1
        return self.good


async def test_a_refused_token_is_renewed_once_before_hello_is_retried(cast: Cast) -> None:
    with trio.fail_after(10):
        ann = await cast.person("ann")
        credentials = _BadThenGood(ann.token)
        async with open_session(cast.ws_url, credentials, device="d") as session:
            assert session.user == ann.id
            assert credentials.renewals == 1
            assert await session.ping() > 0


class _RenewSoon:
    """Credentials due for renewal at once: the session presents them with AUTH."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    @property
    def renew_at(self) -> float | None:
        return 0.0

    async def access_token(self, *, renew: bool = False) -> str:
        self.calls += 1
        return self.token


async def test_a_token_due_for_renewal_is_presented_with_auth(cast: Cast) -> None:
    with trio.fail_after(10):
        ann = await cast.person("ann")
        credentials = _RenewSoon(ann.token)
        async with open_session(cast.ws_url, credentials, device="d") as session:
            await wait_until(lambda: session.statistics().auths >= 1)
            assert credentials.calls >= 2  # HELLO, then AUTH
            assert await session.ping() > 0
