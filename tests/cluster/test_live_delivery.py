"""Live delivery across two instances sharing PostgreSQL and Kafka (README.md, "Run a cluster").

Alice is on instance A; Bob has his desk on B and his phone on A; Cy is on B.
Everyone sends into a direct conversation (Alice and Bob) and a group (all
three) at once. Every device gets every message of its conversations live,
in seq order, exactly once after the client's dedupe, with the seq -> message
mapping of the acks; the messages from the other instance arrive as pushes
through Kafka (a receiver with nothing of its own to send has no other way
to learn of them); each sender's ack comes over its own socket, from the
instance it is on, before anything else.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import trio

from sandcat.client import Ack, Client
from sandcat.protocol import Msg
from tests.client.cast import Cast, take
from tests.cluster.conftest import Instance

N_DIRECT = 120
N_GROUP = 180
IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class Sent:
    device: str
    text: str
    ack: Ack


async def test_every_device_on_either_instance_gets_everything_live(
    cluster: tuple[Instance, Instance], cast: Cast
) -> None:
    a, b = cluster
    with trio.fail_after(60):
        alice, bob, cy = [await cast.person(n) for n in ("alice", "bob", "cy")]
        direct = await cast.befriend(alice, bob)
        await cast.befriend(alice, cy)
        group = await cast.group(alice, [bob, cy])
        async with (
            cast.client(alice, "laptop", ws_url=a.ws_url) as laptop,
            cast.client(bob, "desk", ws_url=b.ws_url) as desk,
            cast.client(bob, "phone", ws_url=a.ws_url) as phone,
            cast.client(cy, "tablet", ws_url=b.ws_url) as tablet,
        ):
            devices: dict[str, Client] = {
                "laptop": laptop,
                "desk": desk,
                "phone": phone,
                "tablet": tablet,
            }
            plan = {
                direct: (N_DIRECT, ["laptop", "desk", "phone"]),
                group: (N_GROUP, list(devices)),
            }
            expected = {
                name: {cid: n for cid, (n, members) in plan.items() if name in members}
                for name in devices
            }
            sent: dict[tuple[str, int], Sent] = {}
            seen: dict[str, dict[str, list[Msg]]] = {name: defaultdict(list) for name in devices}

            async def send_share(name: str, cid: str, texts: list[str]) -> None:
                for text in texts:
                    ack = await devices[name].session.send(cid, text=text)
                    assert (ack.cid, ack.seq) not in sent
                    sent[ack.cid, ack.seq] = Sent(name, text, ack)

            async def receive(name: str) -> None:
                want = expected[name]
                async for msg in devices[name].session.messages():
                    seen[name][msg.cid].append(msg)
                    if all(len(seen[name][cid]) >= n for cid, n in want.items()):
                        return

            async with trio.open_nursery() as nursery:
                for name in devices:
                    nursery.start_soon(receive, name)
                for cid, (n, members) in plan.items():
                    tag = "d" if cid == direct else "g"
                    for i, name in enumerate(members):
                        texts = [f"{tag}-{name}-{k}" for k in range(i, n, len(members))]
                        for lane in range(IN_FLIGHT):
                            nursery.start_soon(send_share, name, cid, texts[lane::IN_FLIGHT])

            for cid, (n, _) in plan.items():
                assert sorted(seq for c, seq in sent if c == cid) == list(range(1, n + 1))
            owner = {"laptop": alice.id, "desk": bob.id, "phone": bob.id, "tablet": cy.id}
            for name, conversations in seen.items():
                assert set(conversations) == set(expected[name]), name
                for cid, msgs in conversations.items():
                    assert [m.seq for m in msgs] == list(range(1, plan[cid][0] + 1)), (name, cid)
                    for msg in msgs:
                        origin = sent[cid, msg.seq]
                        assert (msg.mid, msg.body) == (origin.ack.mid, {"text": origin.text})
                        assert msg.sender == owner[origin.device]
                        if msg.sender == owner[name]:
                            assert (msg.cmid, msg.device) == (origin.ack.cmid, origin.device)
                        else:
                            assert (msg.cmid, msg.device) == (None, None)
                assert devices[name].session.statistics().sends_pending == 0
                # Live: everything others sent is pushed too (some reached the
                # application first through a pull of a hole: with writers on two
                # instances, pushes of one conversation can arrive out of order).
                others = sum(
                    1 for s in sent.values() if s.device != name and name in plan[s.ack.cid][1]
                )
                with trio.fail_after(10):
                    while devices[name].session.statistics().pushes < others:  # noqa: ASYNC110
                        await trio.sleep(0.01)

            # Quiet afterwards: a lone message from A reaches B's devices with no
            # later traffic to reveal it (only the bus can bring it), and the
            # other way round. (A session also delivers its own sends, by their acks.)
            hello = await laptop.session.send(direct, text="only via kafka")
            for session in (laptop.session, desk.session, phone.session):
                [msg] = await take(session, 1)
                assert (msg.cid, msg.seq, msg.mid) == (direct, hello.seq, hello.mid)
            back = await tablet.session.send(group, text="and back")
            for session in (laptop.session, desk.session, phone.session, tablet.session):
                [msg] = await take(session, 1)
                assert (msg.cid, msg.seq, msg.mid) == (group, back.seq, back.mid)
