"""The Kafka bus's failure paths, against a real broker or a closed port."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import trio

from sandcat.bus import BusUnavailable
from sandcat.bus.bus import Record
from sandcat.bus.kafka import KafkaBus, lost_logs, open_kafka_bus
from tests.kafka import Tansu
from tests.postgres import free_port


async def test_an_existing_topic_is_used_as_it_is(kafka_bootstrap: str, kafka_topic: str) -> None:
    async with open_kafka_bus(kafka_bootstrap, topic=kafka_topic, partitions=2, timeout_s=5):
        pass
    again = open_kafka_bus(kafka_bootstrap, topic=kafka_topic, partitions=7, timeout_s=5)
    async with again as bus, bus.subscribe() as subscription:
        await bus.publish([Record("k", b"v")])
        with trio.fail_after(20):
            assert await subscription.receive() == [b"v"]


async def test_no_broker_fails_publish_within_the_deadline() -> None:
    bus = KafkaBus(f"127.0.0.1:{free_port()}", topic="t", partitions=1, timeout_s=1)
    with trio.fail_after(10), pytest.raises(BusUnavailable, match="did not confirm"):
        await bus.publish([Record("k", b"v")])
    with trio.fail_after(10), pytest.raises(BusUnavailable, match="could not be created"):
        await bus.ensure_topic()
    with trio.fail_after(10), pytest.raises(BusUnavailable, match="cannot be read"):
        async with bus.subscribe():
            pass  # pragma: no cover - never entered
    await bus.aclose()


async def test_publishing_recovers_after_the_broker_restarts_empty(tmp_path: Path) -> None:
    """A broker that comes back without its state (tansu on memory storage) has lost
    the topic: records time out, or librdkafka fails the producer (a fatal error from
    flush used to escape and crash the instance). Either is ``BusUnavailable`` for the
    caller (its outbox rows stay); the bus recreates the topic and the producer, and
    publishing resumes."""
    broker = Tansu(free_port(), tmp_path / "tansu.log")
    broker.start()
    try:
        async with open_kafka_bus(broker.bootstrap, topic="t", partitions=2, timeout_s=2) as bus:
            await bus.publish([Record(f"k{n}", b"before") for n in range(20)])
            await trio.to_thread.run_sync(broker.kill)
            await trio.to_thread.run_sync(broker.start)
            failures = 0
            with trio.fail_after(30):
                while True:
                    try:
                        await bus.publish([Record(f"k{n}", b"after") for n in range(20)])
                        break
                    except BusUnavailable:
                        failures += 1
            async with bus.subscribe() as subscription:
                await bus.publish([Record("k", b"seen")])
                # Records published before may come first (tansu's log end lags
                # under load, so the subscription may start a little early).
                with trio.fail_after(20):
                    while b"seen" not in await subscription.receive():
                        pass
    finally:
        broker.stop()


async def test_a_subscription_reads_on_after_the_broker_loses_its_log(tmp_path: Path) -> None:
    """The broker restarts empty while a subscription is far into the old log: the
    new log's offsets start from zero again, below the subscription's position, and
    tansu answers fetches past its end with nothing rather than an error. The
    subscription notices its partitions end before its position and reads the new
    log from its start, so what is published after the restart arrives (the chaos
    test's cross-instance pushes stopped for good here)."""
    broker = Tansu(free_port(), tmp_path / "tansu.log")
    broker.start()
    try:
        async with (
            open_kafka_bus(broker.bootstrap, topic="t", partitions=2, timeout_s=2) as bus,
            bus.subscribe() as subscription,
        ):
            await bus.publish([Record(f"k{n}", b"before") for n in range(200)])
            seen = 0
            with trio.fail_after(20):
                while seen < 200:
                    seen += len(await subscription.receive())
            await trio.to_thread.run_sync(broker.kill)
            await trio.to_thread.run_sync(broker.start)
            after: list[bytes] = []

            async def publish_until_read() -> None:
                n = 0
                while True:
                    n += 1
                    # The first ones after the restart may time out.
                    with contextlib.suppress(BusUnavailable):
                        await bus.publish([Record(f"k{n}", f"after {n}".encode())])
                    await trio.sleep(0.1)

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(publish_until_read)
                    while len(after) < 5:
                        after += await subscription.receive()
                    nursery.cancel_scope.cancel()
            assert all(value.startswith(b"after ") for value in after), after
    finally:
        broker.stop()


def test_a_partition_is_read_again_only_when_two_checks_find_it_behind_and_growing() -> None:
    """A watermark behind the position once (tansu's answer lagging under load) is
    watched, not acted on; behind the same position at the next check with a log
    end that grew, it is read again; a partition that moved on, or caught up, is
    forgotten; one whose end stays put behind the position (tansu's report of a
    quiet partition) is only watched."""
    rewind, watch = lost_logs({0: 19, 1: 361, 2: 5}, {0: 11, 1: 360, 2: 5}, {})
    assert (rewind, watch) == ([], {0: (19, 11), 1: (361, 360)})
    # Partition 0 is still behind at 19 and growing (lost its log); 1 moved on and caught up.
    rewind, watch = lost_logs({0: 19, 1: 400, 2: 5}, {0: 12, 1: 400, 2: 5}, watch)
    assert (rewind, watch) == ([0], {})
    # Behind at a new position: watched again from there.
    assert lost_logs({0: 30}, {0: 2}, {0: (19, 1)}) == ([], {0: (30, 2)})
    # Behind at the same position, its end where it was: nothing appended, not lost.
    assert lost_logs({0: 10}, {0: 1}, {0: (10, 1)}) == ([], {0: (10, 1)})


async def test_a_subscription_does_not_reread_a_log_whose_end_is_reported_short(
    tmp_path: Path,
) -> None:
    """tansu reports a partition's end as the last batch's first offset plus one, so
    once a subscription has read a batch of several records its position is past
    the reported end. That is not a lost log: the subscription must not read the
    partition again from its start (it did, every other second, for as long as the
    partition stayed quiet: the soak's instances re-read their whole log)."""
    broker = Tansu(free_port(), tmp_path / "tansu.log")
    broker.start()
    try:
        async with (
            open_kafka_bus(broker.bootstrap, topic="t", partitions=1, timeout_s=2) as bus,
            bus.subscribe() as subscription,
        ):
            for batch in range(2):
                sent = [f"r{batch}-{n}".encode() for n in range(10)]
                await bus.publish([Record("k", value) for value in sent])
                got: list[bytes] = []
                with trio.fail_after(20):
                    while len(got) < len(sent):
                        got += await subscription.receive()
                assert got == sent
                # Several rewind checks (one a second) pass on the quiet partition.
                with trio.move_on_after(3.5):
                    got += await subscription.receive()
                assert got == sent, "the subscription read records again"
    finally:
        broker.stop()
