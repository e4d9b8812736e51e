"""The cast of a chaos run and the phases of one scenario.

Six users on a ring of friendships (six direct conversations) and two groups
of four, two devices each, the twelve devices spread over the three
instances. ``run_scenario`` keeps every device sending at a modest rate,
injects one fault (a callable that returns once it has healed), quiesces
(new sends stop, open ones resolve by resending), waits for every device to
hold every stored seq of its conversations, reads the final state from
PostgreSQL and runs the checker over the whole history so far.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import trio

from sandcat.client.http import Tokens
from sandcat.protocol import direct_cid
from tests.chaos.checker import check, report
from tests.chaos.cluster import Cluster
from tests.chaos.device import Device
from tests.chaos.history import Checkpoint, History, Stored

USERS = 6
PASSWORD = "correct horse 1"
#: New sends per second per device (twelve devices: about 24 messages/s in all).
RATE_PER_S = 2.0
#: Send loops per device, each at RATE_PER_S (the soak runs several: one loop waits
#: for each ack, so a slow ack would otherwise cap the rate).
SENDERS_PER_DEVICE = 1
WARMUP_S = 3.0
AFTER_S = 3.0
RESOLVE_TIMEOUT_S = 30.0
CONVERGE_TIMEOUT_S = 30.0


@dataclass
class Cast:
    history: History
    devices: list[Device]


def make_cast(cluster: Cluster, prefix: str = "chaos") -> Cast:
    """Register, befriend, group and log in everyone (blocking; HTTP on instance 0 and
    homes); usernames are ``prefix`` and a number (a second cast needs another prefix)."""
    urls = [instance.ws_url for instance in cluster.instances]
    history = History()
    with httpx.Client(base_url=cluster.instances[0].http_url, timeout=30) as http:
        ids: list[str] = []
        names = [f"{prefix}{n}" for n in range(USERS)]
        for name in names:
            reply = http.post(
                "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
            )
            assert reply.status_code == 201, reply.text
            ids.append(str(reply.json()["user"]["id"]))
        tokens: dict[tuple[int, int], str] = {}
        pairs: dict[tuple[int, int], Tokens] = {}
        for n, name in enumerate(names):
            for d in range(2):
                home = cluster.instances[(2 * n + d) % len(cluster.instances)]
                reply = httpx.post(
                    f"{home.http_url}/api/v1/auth/login",
                    json={"login": name, "password": PASSWORD, "device": f"d{d}", "platform": "t"},
                    timeout=30,
                )
                assert reply.status_code == 200, reply.text
                tokens[(n, d)] = str(reply.json()["access_token"])
                pairs[(n, d)] = Tokens.from_json(reply.json())

        def auth(n: int) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[(n, 0)]}"}

        for n in range(USERS):
            peer = (n + 1) % USERS
            reply = http.post("/api/v1/friends/requests", json={"to": ids[peer]}, headers=auth(n))
            assert reply.status_code == 201, reply.text
            request = reply.json()["request"]["id"]
            reply = http.post(
                f"/api/v1/friends/requests/{request}/accept", json={}, headers=auth(peer)
            )
            assert reply.status_code == 200, reply.text
            history.members[direct_cid(ids[n], ids[peer])] = frozenset({ids[n], ids[peer]})
        for owner, group in ((0, [1, 2, 3]), (2, [3, 4, 5])):
            # Group members must be the creator's friends: befriend the rest first.
            for m in group:
                if direct_cid(ids[owner], ids[m]) not in history.members:
                    reply = http.post(
                        "/api/v1/friends/requests", json={"to": ids[m]}, headers=auth(owner)
                    )
                    assert reply.status_code == 201, reply.text
                    request = reply.json()["request"]["id"]
                    reply = http.post(
                        f"/api/v1/friends/requests/{request}/accept", json={}, headers=auth(m)
                    )
                    assert reply.status_code == 200, reply.text
                    history.members[direct_cid(ids[owner], ids[m])] = frozenset(
                        {ids[owner], ids[m]}
                    )
            reply = http.post(
                "/api/v1/groups",
                json={"name": f"g{owner}", "members": [ids[m] for m in group]},
                headers=auth(owner),
            )
            assert reply.status_code == 201, reply.text
            cid = str(reply.json()["group"]["cid"])
            history.members[cid] = frozenset({ids[owner], *(ids[m] for m in group)})
    devices = []
    for n in range(USERS):
        # Not friends (the ring and the group owners' extra friendships skip n+3 for n>0).
        stranger = (n + 3) % USERS
        foreign = direct_cid(ids[n], ids[stranger])
        if foreign in history.members:
            foreign = "g:nosuchgroup"
        history.devices[ids[n]] = ("d0", "d1")
        for d in range(2):
            devices.append(
                Device(
                    user=ids[n],
                    name=f"d{d}",
                    token=tokens[(n, d)],
                    urls=urls,
                    home=(2 * n + d) % len(urls),
                    history=history,
                    foreign_cid=foreign,
                    seed=100 * n + d,
                    tokens=pairs[(n, d)],
                    login=names[n],
                )
            )
    return Cast(history, devices)


@dataclass
class Numbers:
    """What one scenario measured, for the test output."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)
    resolve_s: float = 0.0
    converge_s: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
    #: The counts of this scenario's own send attempts (``counts`` is cumulative).
    scenario: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        c = self.counts
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"chaos {self.name}: attempts={c.get('attempts')} sends={c.get('sends')} "
            f"acked={c.get('acked')} fail={c.get('fail')} info={c.get('info')} "
            f"stored={c.get('stored')} pushes={c.get('pushes')} pulled={c.get('pulled')} "
            f"resolved in {self.resolve_s:.1f} s, converged in {self.converge_s:.1f} s {extra}"
            + (
                f" | this scenario: attempts={self.scenario['attempts']} "
                f"acked={self.scenario['acked']} refused={self.scenario['fail']} "
                f"indeterminate={self.scenario['info']}"
                if self.scenario
                else ""
            )
        )


Fault = Callable[[Numbers], Awaitable[None]]


async def run_scenario(
    cluster: Cluster,
    cast: Cast,
    name: str,
    fault: Fault,
    *,
    converge_timeout_s: float = CONVERGE_TIMEOUT_S,
) -> Numbers:
    """Load, fault, heal, quiesce, converge, check. Fails the test on any violation."""
    numbers = Numbers(name)
    history = cast.history
    first = len(history.ops)
    await trio.to_thread.run_sync(cluster.ensure_running)
    async with trio.open_nursery() as nursery:
        for device in cast.devices:
            nursery.start_soon(device.run)
        for device in cast.devices:
            await device.wait_connected(15)
        stop, give_up = trio.Event(), trio.Event()
        async with trio.open_nursery() as senders:
            for device in cast.devices:
                for _ in range(SENDERS_PER_DEVICE):
                    senders.start_soon(device.send_load, RATE_PER_S, stop, give_up)
            await trio.sleep(WARMUP_S)
            history.checkpoints.append(
                Checkpoint(
                    f"{name}: before", _ours(history, await trio.to_thread.run_sync(cluster.heads))
                )
            )
            await fault(numbers)
            await trio.sleep(AFTER_S)
            stop.set()
            quiesced = time.monotonic()
            with trio.move_on_after(RESOLVE_TIMEOUT_S):
                # Every open send resends until it is acked or refused.
                await _wait(lambda: not senders.child_tasks)
            give_up.set()
            numbers.resolve_s = time.monotonic() - quiesced
        heads = _ours(history, await trio.to_thread.run_sync(cluster.heads))
        history.checkpoints.append(Checkpoint(f"{name}: after", heads))
        with trio.move_on_after(converge_timeout_s):
            await _wait(lambda: all(d.connected and d.has_all(heads) for d in cast.devices))
        numbers.converge_s = time.monotonic() - quiesced
        history.online = {d.key for d in cast.devices if d.connected}
        nursery.cancel_scope.cancel()
    assert not cluster.dead(), "\n".join(cluster.dead())
    await _read_final(cluster, history)
    numbers.counts = history.counts()
    numbers.scenario = history.counts(first)
    violations = check(history)
    assert not violations, f"{numbers.line()}\n{report(violations)}"
    assert history.online == {d.key for d in cast.devices}, "a device stayed offline"
    return numbers


def _ours(history: History, heads: dict[str, int]) -> dict[str, int]:
    """The heads of this cast's conversations only."""
    return {cid: head for cid, head in heads.items() if cid in history.members}


async def _wait(done: Callable[[], bool]) -> None:
    while not done():  # noqa: ASYNC110 - polling state several tasks change
        await trio.sleep(0.05)


async def _read_final(cluster: Cluster, history: History) -> None:
    rows = await trio.to_thread.run_sync(cluster.messages)
    heads = await trio.to_thread.run_sync(cluster.heads)
    history.final = {}
    history.final_min = {}
    for cid, seq, mid, sender, cmid, text, low in rows:
        if cid not in history.members:
            continue  # another cast's conversation (a negative control's, say)
        history.final.setdefault(cid, []).append(Stored(cid, seq, mid, sender, cmid, text))
        history.final_min[cid] = low
    history.final_max = {cid: head for cid, head in heads.items() if cid in history.members}
