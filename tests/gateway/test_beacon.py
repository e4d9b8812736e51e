"""The beacon: signals reach outlets on every instance; bad events and full queues drop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgpack
import pytest
import trio

from sandcat.bus.broadcast import BroadcastUnavailable, Deliver, LocalBroadcast
from sandcat.gateway.beacon import Beacon
from sandcat.store.presence import Seen


@dataclass
class Outlet:
    device: str
    got: list[bytes] = field(default_factory=list)

    def push(self, data: bytes) -> None:
        self.got.append(data)


@dataclass
class Hub:
    devices: dict[str, list[Outlet]] = field(default_factory=dict)

    def outlets(self, user: str) -> Iterable[Outlet]:
        return self.devices.get(user, [])


class Refusing:
    """A broadcast that takes listeners but refuses every publish."""

    async def publish(self, data: bytes) -> None:
        raise BroadcastUnavailable("down")

    async def listen(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await trio.sleep_forever()


async def test_pushes_and_presence_reach_the_other_instance_not_back(
    nursery: trio.Nursery,
) -> None:
    shared = LocalBroadcast()
    here, there = Hub(), Hub()
    phone, desk, laptop = Outlet("phone"), Outlet("desk"), Outlet("laptop")
    here.devices["bob"] = [phone]
    there.devices["bob"] = [desk]
    there.devices["alice"] = [laptop]
    a = Beacon(here, shared, instance="a")
    b = Beacon(there, shared, instance="b")
    changes: list[tuple[str, Seen, list[str]]] = []
    b.on_presence = lambda *change: changes.append(change)
    await nursery.start(a.run)
    await nursery.start(b.run)

    a.push([("bob", None, "phone"), ("alice", "laptop", None)], b"\x93\x28\x00\x80")
    a.presence("alice", Seen("offline", 7), ["bob"])
    await trio.sleep(0.05)

    assert (phone.got, desk.got, laptop.got) == ([], [b"\x93\x28\x00\x80"], [b"\x93\x28\x00\x80"])
    assert changes == [("alice", Seen("offline", 7), ["bob"])]


@pytest.mark.parametrize(
    "event",
    [
        b"\xc1",
        b"\x90",
        msgpack.packb({"i": "x", "t": "f", "to": "bob", "f": b""}),
        msgpack.packb({"i": "x", "t": "f", "to": [["bob", None]], "f": b""}),
        msgpack.packb({"i": "x", "t": "f", "to": [["bob", None, 3]], "f": b""}),
        msgpack.packb({"i": "x", "t": "f", "to": [], "f": "not bytes"}),
        msgpack.packb({"i": "x", "t": "p", "u": "a", "s": "online", "l": -1, "to": []}),
        msgpack.packb({"i": "x", "t": "p", "u": "a", "s": "online", "l": None, "to": [1]}),
        b"\x00" * (1 << 21),
    ],
)
def test_malformed_events_are_dropped(event: bytes) -> None:
    hub = Hub({"bob": [Outlet("phone")]})
    beacon = Beacon(hub, LocalBroadcast(), instance="a")
    changes: list[object] = []
    beacon.on_presence = lambda *change: changes.append(change)
    beacon.apply(event)
    assert (hub.devices["bob"][0].got, changes) == ([], [])


def test_a_full_queue_drops_instead_of_blocking() -> None:
    beacon = Beacon(Hub(), LocalBroadcast(), instance="a")
    for _ in range(5000):
        beacon.push([("bob", None, None)], b"x")
    assert beacon.dropped == 5000 - 4096


async def test_refused_publishes_are_counted(nursery: trio.Nursery) -> None:
    beacon = Beacon(Hub(), Refusing(), instance="a")
    await nursery.start(beacon.run)
    beacon.presence("alice", Seen("online"), ["bob"])
    await trio.sleep(0.05)
    assert beacon.dropped == 1


async def test_without_a_broadcast_delivery_is_local_only(nursery: trio.Nursery) -> None:
    phone = Outlet("phone")
    beacon = Beacon(Hub({"bob": [phone]}), None, instance="a")
    await nursery.start(beacon.run)
    beacon.push([("bob", None, None)], b"x")
    beacon.presence("alice", Seen("online"), ["bob"])  # no sink: nothing to do
    assert phone.got == [b"x"]
