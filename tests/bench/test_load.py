"""The load generator's send pump, without a server: its window must never deadlock."""

from __future__ import annotations

import time

import trio
from bench.load import OK, Plan, Samples, _Sender
from bench.report import Timeline


class _AckingLink:
    """Stands in for a Link: every frame written is acked at once."""

    def __init__(self) -> None:
        self.sender: _Sender | None = None
        self.writes = 0

    async def send(self, data: bytes) -> None:
        self.writes += 1
        assert self.sender is not None
        for rid in list(self.sender.pending):
            self.sender.on_reply(OK, rid, time.perf_counter())
        await trio.lowlevel.checkpoint()


async def test_a_fixed_rate_pump_more_than_a_window_behind_sends_what_it_holds() -> None:
    # A rate far beyond what the pump can do: from its second round on it is
    # always more than a window (2) behind. It used to take window permits for
    # the whole backlog before writing any frame, holding back the frames whose
    # acks would free them: stuck for good.
    plan = Plan(
        host="127.0.0.1", port=0, senders=[], receivers=[], window=2,
        rate=1_000_000.0, duration_s=0.2, fanout=1,
    )  # fmt: skip
    samples = Samples()
    samples.timelines = {"acks": Timeline(time.perf_counter())}
    link = _AckingLink()
    sender = _Sender(0, link, "d:a:b", plan, samples)  # type: ignore[arg-type]
    link.sender = sender
    with trio.fail_after(5):
        await sender.pump(time.perf_counter() + plan.duration_s)
    assert link.writes > 2
    assert samples.acked == samples.sent > 2
    assert not sender.pending
