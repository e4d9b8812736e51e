"""Three users, four devices, two conversations, 1,000 concurrent messages.

Ann has a laptop and a phone; Bob and Cy one device each. Ann and Bob share a
direct conversation; all three a group. Every device sends concurrently into
the conversations it is in, and every device must see each conversation's
seqs 1..n exactly once, in order, with the same seq -> message mapping as
the acks (G3, G5, G6), its own user's messages carrying cmid and device.
Then a resend returns the original ack (G2), and PULL and SYNC agree with
what was sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
import trio

from sandcat.client import Ack, Client
from sandcat.protocol import Msg
from tests.client.cast import Cast, take

N_DIRECT = 400
N_GROUP = 600
#: Sends each device keeps in flight per conversation.
IN_FLIGHT = 4


@pytest.fixture(params=["sqlite", "postgres"])
def server_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """The whole happy path once per relational backend: same code, other stores."""
    if request.param == "postgres":
        return {"backends.database_url": request.getfixturevalue("postgres_url")}
    return {}


@dataclass(frozen=True, slots=True)
class Sent:
    device: str
    text: str
    ack: Ack


async def test_every_device_sees_every_conversation_in_order_exactly_once(cast: Cast) -> None:
    with trio.fail_after(30):
        ann, bob, cy = await cast.person("ann"), await cast.person("bob"), await cast.person("cy")
        direct = await cast.befriend(ann, bob)
        await cast.befriend(ann, cy)
        group = await cast.group(ann, [bob, cy])
        async with (
            cast.client(ann, "laptop") as laptop,
            cast.client(ann, "phone") as phone,
            cast.client(bob, "desk") as desk,
            cast.client(cy, "tablet") as tablet,
        ):
            devices: dict[str, Client] = {
                "laptop": laptop,
                "phone": phone,
                "desk": desk,
                "tablet": tablet,
            }
            plan = {
                direct: (N_DIRECT, ["laptop", "phone", "desk"]),
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

            # The acks hand out 1..n per conversation, without holes (G3).
            for cid, (n, _) in plan.items():
                assert sorted(seq for c, seq in sent if c == cid) == list(range(1, n + 1))

            owner = {"laptop": ann.id, "phone": ann.id, "desk": bob.id, "tablet": cy.id}
            for name, conversations in seen.items():
                assert set(conversations) == set(expected[name]), name
                for cid, msgs in conversations.items():
                    assert [m.seq for m in msgs] == list(range(1, plan[cid][0] + 1)), (name, cid)
                    for msg in msgs:
                        origin = sent[cid, msg.seq]
                        assert msg.mid == origin.ack.mid
                        assert msg.body == {"text": origin.text}
                        assert msg.sender == owner[origin.device]
                        if msg.sender == owner[name]:  # this user's message: cmid and device
                            assert (msg.cmid, msg.device) == (origin.ack.cmid, origin.device)
                        else:
                            assert (msg.cmid, msg.device) == (None, None)
                assert devices[name].session.statistics().sends_pending == 0

            # A resend returns the original ack and delivers nothing new (G2).
            first = next(s for s in sent.values() if s.device == "laptop" and s.ack.cid == direct)
            again = await laptop.session.send(direct, text=first.text, cmid=first.ack.cmid)
            assert (again.seq, again.mid, again.ts) == (first.ack.seq, first.ack.mid, first.ack.ts)
            final = await desk.session.send(direct, text="the end")
            assert final.seq == N_DIRECT + 1
            for name in ("laptop", "phone", "desk"):
                [msg] = await take(devices[name].session, 1)
                assert (msg.cid, msg.seq, msg.mid) == (direct, final.seq, final.mid)

            # PULL returns the conversation as sent.
            pulled: list[Msg] = []
            while True:
                page = await tablet.session.pull(group, after=len(pulled), limit=200)
                pulled.extend(page.msgs)
                if not page.more:
                    break
            assert [m.seq for m in pulled] == list(range(1, N_GROUP + 1))
            assert [m.mid for m in pulled] == [sent[group, m.seq].ack.mid for m in pulled]
            assert [m.body for m in pulled] == [{"text": sent[group, m.seq].text} for m in pulled]

            # SYNC: max_seq per conversation, and the last message.
            for name, client in devices.items():
                convs = {conv.cid: conv for conv in (await client.session.sync()).convs}
                for cid, last_seq, last_mid in (
                    (direct, final.seq, final.mid),
                    (group, N_GROUP, sent[group, N_GROUP].ack.mid),
                ):
                    if cid not in expected[name]:
                        assert cid not in convs
                        continue
                    assert convs[cid].max_seq == last_seq, (name, cid)
                    last = convs[cid].last
                    assert last is not None
                    assert (last.seq, last.mid) == (last_seq, last_mid)
