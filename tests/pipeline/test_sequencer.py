"""The sequencer: batching for group commit, the recent-ack fast path, closing."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from sandcat.pipeline.sequencer import Ack, RecentAcks, SendRequest, run_sequencer
from sandcat.protocol import Ok, decode_server
from sandcat.store.messages import NewMessage


@dataclass(eq=False)
class Outlet:
    device: str = "phone"
    pushed: list[bytes] = field(default_factory=list)

    def push(self, data: bytes) -> None:
        self.pushed.append(data)


def request(cmid: str, origin: Outlet | None = None, *, rid: int = 1) -> SendRequest:
    message = NewMessage(sender="a", device="phone", cid="d:a:b", cmid=cmid, kind=1, body=b"\xa1x")
    return SendRequest(message=message, body="x", origin=origin or Outlet(), rid=rid)


def ack(seq: int) -> Ack:
    return Ack(cid="d:a:b", seq=seq, mid=f"m{seq}", ts=5)


class Harness:
    def __init__(self, *, max_batch: int, window_s: float, recent: RecentAcks) -> None:
        self.sends, self._sends_out = trio.open_memory_channel[SendRequest](100)
        self._batches_in, self.batches = trio.open_memory_channel[list[SendRequest]](0)
        self.recent = recent
        self.max_batch = max_batch
        self.window_s = window_s

    async def run(self) -> None:
        await run_sequencer(
            self._sends_out,
            self._batches_in,
            self.recent,
            max_batch=self.max_batch,
            window_s=self.window_s,
        )

    async def cmids(self) -> list[str]:
        batch = await self.batches.receive()
        return [r.message.cmid for r in batch]


def test_recent_acks_keep_the_most_recently_used() -> None:
    recent = RecentAcks(2)
    recent.put(("a", "c", "1"), ack(1))
    recent.put(("a", "c", "2"), ack(2))
    assert recent.get(("a", "c", "1")) == ack(1)  # used: now the most recent
    recent.put(("a", "c", "3"), ack(3))
    assert recent.get(("a", "c", "2")) is None
    assert recent.get(("a", "c", "1")) == ack(1)
    assert recent.get(("a", "c", "3")) == ack(3)
    # Putting an existing key refreshes it and does not grow the cache.
    recent.put(("a", "c", "1"), ack(1))
    recent.put(("a", "c", "4"), ack(4))
    assert recent.get(("a", "c", "3")) is None
    assert recent.get(("a", "c", "1")) == ack(1)


class Ticks:
    """A clock the test moves (ms)."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.mark.parametrize(("idle_ms", "kept"), [(4_999, True), (5_000, True), (5_001, False)])
def test_an_ack_unused_for_longer_than_the_ttl_is_forgotten(idle_ms: int, kept: bool) -> None:
    clock = Ticks()
    recent = RecentAcks(10, ttl_s=5, clock=clock)
    recent.put(("a", "c", "1"), ack(1))
    clock.now += idle_ms
    assert (recent.get(("a", "c", "1")) == ack(1)) is kept
    assert len(recent) == (1 if kept else 0)


def test_expired_acks_leave_on_the_next_put_so_the_lru_holds_only_the_ttls_traffic() -> None:
    clock = Ticks()
    recent = RecentAcks(1000, ttl_s=5, clock=clock)
    for n in range(100):  # one ack every 100 ms for 10 s
        recent.put(("a", "c", str(n)), ack(n))
        clock.now += 100
    # The last put dropped the acks over 5 s old: 49-99 are held, not all 100.
    assert len(recent) == 51
    assert recent.get(("a", "c", "0")) is None
    assert recent.get(("a", "c", "49")) is None  # 5.1 s unused now: dropped on the get
    assert recent.get(("a", "c", "50")) == ack(50)  # exactly 5 s: kept, and used again
    # A use refreshes an ack: it outlives the ones put after it.
    clock.now += 4_000
    assert recent.get(("a", "c", "50")) == ack(50)
    clock.now += 2_000
    recent.put(("a", "c", "new"), ack(200))
    assert len(recent) == 2
    assert recent.get(("a", "c", "50")) == ack(50)
    assert recent.get(("a", "c", "99")) is None


def test_a_ttl_of_zero_keeps_acks_until_pushed_out() -> None:
    clock = Ticks()
    recent = RecentAcks(2, ttl_s=0, clock=clock)
    recent.put(("a", "c", "1"), ack(1))
    clock.now += 10**9
    recent.put(("a", "c", "2"), ack(2))
    assert recent.get(("a", "c", "1")) == ack(1)


def test_recent_acks_of_capacity_zero_remember_nothing() -> None:
    recent = RecentAcks(0)
    recent.put(("a", "c", "1"), ack(1))
    assert recent.get(("a", "c", "1")) is None


def test_ack_frame_is_an_ok_with_cid_seq_mid_ts() -> None:
    frame = decode_server(ack(3).frame(rid=9))
    assert frame == Ok(rid=9, body={"cid": "d:a:b", "seq": 3, "mid": "m3", "ts": 5})


async def test_everything_queued_is_one_batch_up_to_max_batch() -> None:
    harness = Harness(max_batch=3, window_s=0, recent=RecentAcks(10))
    with trio.fail_after(5):
        for i in range(5):
            harness.sends.send_nowait(request(str(i)))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(harness.run)
            assert await harness.cmids() == ["0", "1", "2"]
            assert await harness.cmids() == ["3", "4"]
            await harness.sends.aclose()
        # The sequencer closed its output once its input was closed and drained.
        with pytest.raises(trio.EndOfChannel):
            await harness.batches.receive()


async def test_without_a_window_a_lone_send_is_not_held_back() -> None:
    harness = Harness(max_batch=100, window_s=0, recent=RecentAcks(10))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(harness.run)
            await harness.sends.send(request("0"))
            assert await harness.cmids() == ["0"]
            await harness.sends.send(request("1"))
            assert await harness.cmids() == ["1"]
            await harness.sends.aclose()


async def test_a_window_waits_for_stragglers_until_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    harness = Harness(max_batch=100, window_s=0.010, recent=RecentAcks(10))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(harness.run)
            start = trio.current_time()
            await harness.sends.send(request("0"))
            await trio.sleep(0.004)
            await harness.sends.send(request("1"))
            await trio.sleep(0.004)
            await harness.sends.send(request("2"))
            await trio.sleep(0.004)  # past the window opened by "0"
            await harness.sends.send(request("3"))
            assert await harness.cmids() == ["0", "1", "2"]
            assert await harness.cmids() == ["3"]
            # "3" opened its own window; nothing came, so it left when it closed.
            assert trio.current_time() - start == pytest.approx(0.022)
            await harness.sends.aclose()


async def test_a_window_ends_early_when_the_batch_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    harness = Harness(max_batch=2, window_s=10, recent=RecentAcks(10))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(harness.run)
            start = trio.current_time()
            await harness.sends.send(request("0"))
            await harness.sends.send(request("1"))
            assert await harness.cmids() == ["0", "1"]
            assert trio.current_time() - start < 1
            await harness.sends.aclose()


async def test_closing_sends_mid_window_flushes_the_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    harness = Harness(max_batch=100, window_s=10, recent=RecentAcks(10))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(harness.run)
            start = trio.current_time()
            await harness.sends.send(request("0"))
            await harness.sends.aclose()
            assert await harness.cmids() == ["0"]
            assert trio.current_time() - start < 1
            with pytest.raises(trio.EndOfChannel):
                await harness.batches.receive()


async def test_a_recently_acked_resend_is_answered_without_a_store_trip() -> None:
    recent = RecentAcks(10)
    recent.put(("a", "d:a:b", "old"), ack(7))
    harness = Harness(max_batch=100, window_s=0, recent=recent)
    resender = Outlet()
    with trio.fail_after(5):
        harness.sends.send_nowait(request("old", resender, rid=42))
        harness.sends.send_nowait(request("new"))
        harness.sends.send_nowait(request("old", resender, rid=43))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(harness.run)
            assert await harness.cmids() == ["new"]
            # A batch of nothing but resends is never forwarded.
            await harness.sends.send(request("old", resender, rid=44))
            await harness.sends.send(request("new2"))
            assert await harness.cmids() == ["new2"]
            await harness.sends.aclose()
    answers = [decode_server(data) for data in resender.pushed]
    body = {"cid": "d:a:b", "seq": 7, "mid": "m7", "ts": 5}
    assert answers == [Ok(rid=42, body=body), Ok(rid=43, body=body), Ok(rid=44, body=body)]
