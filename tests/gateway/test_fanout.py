"""The fan-out of session ends and pushes: what crosses to other instances, and what
happens when the broadcast refuses or the queue is full (the event is dropped and
counted; the caller never waits)."""

from __future__ import annotations

import pytest
import trio

from sandcat.bus.broadcast import BroadcastUnavailable, Deliver, LocalBroadcast
from sandcat.gateway.beacon import Fanout


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def end_sessions(
        self, user: str, *, session: str | None, code: int, reason: str, local_only: bool
    ) -> None:
        self.calls.append(("end", user, session, code, reason, local_only))

    def push_each(
        self, targets: list[tuple[str, str | None]], frame: bytes, *, local_only: bool
    ) -> None:
        self.calls.append(("push", targets, frame, local_only))


class Refusing:
    """A broadcast whose backend is down."""

    async def publish(self, data: bytes) -> None:
        raise BroadcastUnavailable("down")

    async def listen(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await trio.sleep_forever()


async def test_events_reach_other_instances_but_not_their_own(nursery: trio.Nursery) -> None:
    broadcast = LocalBroadcast()
    here, there = Recorder(), Recorder()
    mine = Fanout(broadcast, instance="a")
    await nursery.start(mine.run, here)
    await nursery.start(Fanout(broadcast, instance="b").run, there)
    mine.end_sessions("u1", session="s1", code=4007, reason="logged out")
    mine.end_sessions("u2", session=None, code=4007, reason="disabled")
    mine.push_each([("u1", "phone"), ("u2", None)], b"frame")
    with trio.fail_after(5):
        while len(there.calls) < 3:  # noqa: ASYNC110
            await trio.sleep(0.01)
    assert there.calls == [
        ("end", "u1", "s1", 4007, "logged out", True),
        ("end", "u2", None, 4007, "disabled", True),
        ("push", [("u1", "phone"), ("u2", None)], b"frame", True),
    ]
    assert here.calls == []


async def test_a_refused_publish_is_dropped_and_counted(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    fanout = Fanout(Refusing(), instance="a")
    await nursery.start(fanout.run, Recorder())
    fanout.push_each([("u1", None)], b"frame")
    with trio.fail_after(5):
        while fanout.dropped < 1:  # noqa: ASYNC110
            await trio.sleep(0.01)
    assert "fan-out event dropped: down" in caplog.text


def test_a_full_queue_drops_the_event_without_waiting(caplog: pytest.LogCaptureFixture) -> None:
    fanout = Fanout(LocalBroadcast(), instance="a")  # not running: nothing drains the queue
    for _ in range(2000):
        fanout.end_sessions("u1", session=None, code=4007, reason="")
    assert fanout.dropped == 2000 - 1024
    assert "fan-out queue full" in caplog.text
