"""The Kafka bus, driven from Trio through confluent-kafka without blocking the loop.

confluent-kafka wraps librdkafka, which runs its own threads; its Python
calls that wait (``flush``, ``consume``, metadata and admin requests) run in
``trio.to_thread`` with deadlines, so the event loop never blocks on the
broker. Delivery reports fire inside ``flush`` on that worker thread and are
collected per publish.

Producer: ``acks=all``, one request in flight per broker, key = the record
key (the cid), so each conversation's records land on one partition in
order. Not librdkafka's idempotent mode: a broker that restarts may forget
or reuse producer ids (tansu does, even with durable storage), and every
new producer then fails with OUT_OF_ORDER_SEQUENCE_NUMBER until the ids it
is handed pass the forgotten ones. The bus is at least once anyway (the
outbox publishes again whatever was not confirmed) and consumers drop
repeats by ``(cid, seq)``, so a retry's duplicate costs nothing. A publish returns
only once every record is confirmed; if the deadline passes first it raises
``BusUnavailable`` and the caller keeps its outbox rows to publish again.
After a failed publish the next one first makes sure the topic exists (a
broker may come back empty), and a producer that hit a fatal error is
replaced by a new one.

Subscriptions need every record, not a share of them: each one assigns all
partitions of the topic to itself at their current end offsets (no consumer
group, so no rebalance and no group-join wait) and reads on from there.

Every client handle is closed explicitly, on a worker thread, before its last
reference goes. Left to the cyclic garbage collector, a handle could be freed
on whichever thread happens to run a collection — including a librdkafka
thread running a Python callback (the admin client completes its futures on
one), and librdkafka aborts the whole process when a handle is destroyed from
one of its own threads.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from sandcat.bus.bus import BusUnavailable, Record

log = logging.getLogger(__name__)
#: librdkafka's own log lines (connection failures, retries) go here, not to stderr.
_driver_log = logging.getLogger("sandcat.bus.rdkafka")

#: How long one ``consume`` call waits in its thread (also the cancel latency).
_POLL_S = 0.25
#: Most records taken from the consumer per call.
_CONSUME_BATCH = 500
#: How often a subscription checks that the broker's log has not gone back.
_REWIND_CHECK_S = 1.0


class _KafkaSubscription:
    def __init__(self, consumer: Consumer, *, timeout_s: float) -> None:
        self._consumer = consumer
        self._timeout_s = timeout_s
        self._next_check = trio.current_time() + _REWIND_CHECK_S

    async def receive(self) -> list[bytes]:
        while True:
            if trio.current_time() >= self._next_check:
                await trio.to_thread.run_sync(self._rewind_if_behind)
                self._next_check = trio.current_time() + _REWIND_CHECK_S
            messages = await trio.to_thread.run_sync(
                self._consumer.consume, _CONSUME_BATCH, _POLL_S
            )
            values: list[bytes] = []
            for message in messages:
                error = message.error()
                if error is not None:
                    # Transport trouble; librdkafka reconnects and resumes by itself.
                    log.warning("kafka consumer: %s", error)
                    continue
                value = message.value()
                if isinstance(value, bytes):
                    values.append(value)
            if values:
                return values

    def _rewind_if_behind(self) -> None:
        """Read again from the start of a partition whose log ends before our position.

        A broker that came back without its log (in-memory storage, a lost
        disk) numbers its offsets from zero again, and does not always answer
        a fetch past its end with OFFSET_OUT_OF_RANGE: the subscription would
        wait, reading nothing, until the new log grew past the old position.
        Every record in the new log was published after the loss, so reading
        it from its start misses nothing (repeats are dropped downstream).
        """
        consumer = self._consumer
        # A position not yet set is negative (OFFSET_INVALID): never behind.
        for position in consumer.position(consumer.assignment()):
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(position.topic, position.partition), timeout=self._timeout_s
                )
            except KafkaException as exc:
                log.debug("kafka consumer: watermarks unavailable (%s)", exc)
                return  # the broker is away; the next check tries again
            if high < position.offset:
                log.warning(
                    "kafka partition %s[%d] ends at %d, before this consumer's %d:"
                    " the broker lost its log; reading it again from %d",
                    position.topic,
                    position.partition,
                    high,
                    position.offset,
                    low,
                )
                consumer.seek(TopicPartition(position.topic, position.partition, low))


class KafkaBus:
    """One producer per instance; one consumer per subscription. See ``open_kafka_bus``."""

    def __init__(self, bootstrap: str, *, topic: str, partitions: int, timeout_s: float) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._timeout_s = timeout_s
        self._client_id = f"sandcat-{secrets.token_hex(4)}"
        self._producer = self._new_producer()
        self._recheck_topic = False

    def _common(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._bootstrap,
            "client.id": self._client_id,
            "logger": _driver_log,
            "socket.connection.setup.timeout.ms": int(self._timeout_s * 1000),
        }

    def _new_producer(self) -> Producer:
        return Producer(
            {
                **self._common(),
                "enable.idempotence": False,
                "acks": "all",
                # With one request in flight a retried batch cannot overtake the next.
                "max.in.flight.requests.per.connection": 1,
                "linger.ms": 1,
                # A record not confirmed by then fails its publish (and stays in the outbox).
                "message.timeout.ms": max(1000, int(self._timeout_s * 1000)),
            }
        )

    async def ensure_topic(self) -> None:
        """Create the topic with the configured partitions unless it exists."""
        settings = self._common()

        def create() -> None:
            # Made and dropped on this worker thread, never reachable from a traceback.
            admin = AdminClient(settings)
            futures = admin.create_topics(
                [NewTopic(self.topic, num_partitions=self._partitions, replication_factor=-1)],
                request_timeout=self._timeout_s,
            )
            try:
                futures[self.topic].result(timeout=self._timeout_s)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            finally:
                del futures, admin

        try:
            with trio.fail_after(self._timeout_s + 1):
                await trio.to_thread.run_sync(create)
        except (KafkaException, trio.TooSlowError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka topic {self.topic!r} could not be created: {exc}") from exc

    async def publish(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._recheck_topic:
            # The last publish failed: the broker may have come back without the topic.
            await self.ensure_topic()
            self._recheck_topic = False
        try:
            await self._publish(records)
        except (BusUnavailable, KafkaException, SystemError) as exc:
            # A broker that came back may time the records out or fail the
            # producer for good. A new producer starts clean; the caller keeps
            # the records and publishes them again (at least once).
            # SystemError: raised once from flush in the chaos test after such an
            # error, while replaced producers were left to the garbage collector
            # (they are closed explicitly now); a driver failure, not a crash.
            log.warning("kafka publish failed (%s); starting a new producer", exc)
            self._recheck_topic = True
            await self._replace_producer()
            if isinstance(exc, BusUnavailable):
                raise
            raise BusUnavailable(f"kafka producer failed: {exc}") from exc

    async def _replace_producer(self) -> None:
        old, self._producer = self._producer, self._new_producer()
        # Drop what the old one still queues (the caller publishes it again), serve
        # the purge's delivery reports, and destroy it on a worker thread.
        old.purge()
        old.poll(0)
        await _close_producer(old)

    async def _publish(self, records: Sequence[Record]) -> None:
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failures.append(error)

        producer = self._producer
        for record in records:
            while True:
                try:
                    producer.produce(
                        self.topic,
                        key=record.key.encode(),
                        value=record.value,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    # The local queue is full: let the broker take some first.
                    await trio.to_thread.run_sync(producer.poll, 0.1)
        # Abandoned if cancelled (a drain past its deadline): flush is thread-safe,
        # and its timeout ends the thread soon after.
        left = await trio.to_thread.run_sync(
            producer.flush, self._timeout_s, abandon_on_cancel=True
        )
        if left or failures:
            detail = f"{left} unconfirmed" if left else str(failures[0])
            raise BusUnavailable(f"kafka did not confirm {len(records)} records: {detail}")

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[_KafkaSubscription]:
        consumer = Consumer(
            {
                **self._common(),
                # Required by the client; offsets are never committed, no group is joined.
                "group.id": f"{self._client_id}-{secrets.token_hex(4)}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": 50,
            }
        )
        try:
            with trio.fail_after(self._timeout_s * 2):
                await trio.to_thread.run_sync(self._assign_at_end, consumer)
        except (KafkaException, trio.TooSlowError) as exc:
            await trio.to_thread.run_sync(consumer.close)
            raise BusUnavailable(f"kafka topic {self.topic!r} cannot be read: {exc}") from exc
        try:
            yield _KafkaSubscription(consumer, timeout_s=self._timeout_s)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(consumer.close)

    def _assign_at_end(self, consumer: Consumer) -> None:
        metadata = consumer.list_topics(self.topic, timeout=self._timeout_s)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaException(
                KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no topic {self.topic}")
            )
        positions = []
        for partition in sorted(topic.partitions):
            _, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=self._timeout_s
            )
            positions.append(TopicPartition(self.topic, partition, high))
        consumer.assign(positions)

    async def aclose(self) -> None:
        """Give the producer's last records a moment to be confirmed, then close it."""
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._producer.flush, 1.0)
            await _close_producer(self._producer)


async def _close_producer(producer: Producer) -> None:
    """Destroy ``producer``'s handle on a worker thread (see the module docstring)."""
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(producer.close)


@asynccontextmanager
async def open_kafka_bus(
    bootstrap: str, *, topic: str, partitions: int, timeout_s: float
) -> AsyncIterator[KafkaBus]:
    """A Kafka bus whose topic exists, closed on exit."""
    bus = KafkaBus(bootstrap, topic=topic, partitions=partitions, timeout_s=timeout_s)
    try:
        await bus.ensure_topic()
        yield bus
    finally:
        await bus.aclose()
