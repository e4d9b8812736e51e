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
group, so no rebalance and no group-join wait) and reads on from there. A
record with a delivery slot goes to partition ``slot`` of the delivery topic
(``{topic}.deliver``, ``slots`` partitions); a subscription to a slot assigns
that one partition only.

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
from sandcat.errors import BackendFailure, ignore_failure

log = logging.getLogger(__name__)
#: librdkafka's own log lines (connection failures, retries) go here, not to stderr.
_driver_log = logging.getLogger("sandcat.bus.rdkafka")

#: How long one ``consume`` call waits in its thread (also the cancel latency).
_POLL_S = 0.25
#: Most records taken from the consumer per call.
_CONSUME_BATCH = 500
#: How long the broker holds a fetch that finds no new record. Small: tansu
#: answers a waiting fetch late when records arrive on another of its
#: partitions (bench/RESULTS.md, "Where the cross-instance time went":
#: consume p50 22 ms at 50 ms, 4 ms at 5 ms); an idle subscription costs a
#: fetch per partition batch every 5 ms, in librdkafka's thread.
_FETCH_WAIT_MS = 5
#: How often a subscription checks that the broker's log has not gone back.
_REWIND_CHECK_S = 1.0


class _KafkaSubscription:
    def __init__(
        self,
        consumer: Consumer,
        *,
        timeout_s: float,
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self._consumer = consumer
        self._timeout_s = timeout_s
        self._on_failure = on_failure
        self._next_check = trio.current_time() + _REWIND_CHECK_S
        #: Partitions seen ending before this consumer's position at the last check:
        #: (position, log end) of each.
        self._behind: dict[int, tuple[int, int]] = {}

    async def receive(self) -> list[bytes]:
        while True:
            if trio.current_time() >= self._next_check:
                failed = await trio.to_thread.run_sync(self._rewind_if_behind)
                if failed is not None:
                    self._on_failure("kafka", failed)
                self._next_check = trio.current_time() + _REWIND_CHECK_S
            messages = await trio.to_thread.run_sync(self._take)
            values: list[bytes] = []
            for message in messages:
                error = message.error()
                if error is not None:
                    # Transport trouble; librdkafka reconnects and resumes by itself.
                    log.warning("kafka consumer: %s", error)
                    timeout = error.code() == KafkaError._TIMED_OUT
                    self._on_failure("kafka", "timeout" if timeout else "error")
                    continue
                value = message.value()
                if isinstance(value, bytes):
                    values.append(value)
            if values:
                return values

    def _take(self) -> list[Any]:
        """What the consumer holds, waiting up to ``_POLL_S`` for the first record only.

        ``consume(n, timeout)`` waits until it has ``n`` records or the
        timeout passes: at a few hundred records a second that held every
        record for most of the timeout. ``poll`` returns the first record as
        soon as it is there, and a ``consume`` with no timeout takes whatever
        arrived with it.
        """
        first = self._consumer.poll(_POLL_S)
        if first is None:
            return []
        return [first, *self._consumer.consume(_CONSUME_BATCH - 1, 0)]

    def _rewind_if_behind(self) -> str | None:
        """Read again from the start of a partition whose log ends before our position;
        the kind of failure (``BackendFailure``) if the broker did not answer, else None.

        A broker that came back without its log (in-memory storage, a lost
        disk) numbers its offsets from zero again, and does not always answer
        a fetch past its end with OFFSET_OUT_OF_RANGE: the subscription would
        wait, reading nothing, until the new log grew past the old position.
        Every record in the new log was published after the loss, so reading
        it from its start misses nothing (repeats are dropped downstream).

        A log end below the position is not proof enough. Under load tansu
        answers the watermark query with a high offset some records behind what
        the consumer has already fetched (a single look read whole partitions
        again: the cluster bench saw a fifth of all events twice), and on a
        quiet partition it reports the end as the last batch's first offset
        plus one, for good (two looks read the whole partition again every
        other second: the soak's instances did). So a partition is read again
        only when two checks in a row find it behind the same position and
        its end grew in between: records are being appended where this
        consumer will never read.
        """
        consumer = self._consumer
        highs: dict[int, tuple[int, int]] = {}
        positions: dict[int, int] = {}
        # A position not yet set is negative (OFFSET_INVALID): never behind.
        for position in consumer.position(consumer.assignment()):
            try:
                highs[position.partition] = consumer.get_watermark_offsets(
                    TopicPartition(position.topic, position.partition), timeout=self._timeout_s
                )
            except KafkaException as exc:
                log.debug("kafka consumer: watermarks unavailable (%s)", exc)
                return _kind(exc)  # the broker is away; the next check tries again
            positions[position.partition] = position.offset
        rewind, self._behind = lost_logs(
            positions, {n: high for n, (_, high) in highs.items()}, self._behind
        )
        topic = next(iter(consumer.assignment())).topic if rewind else ""
        for partition in rewind:
            low, high = highs[partition]
            log.warning(
                "kafka partition %s[%d] ends at %d, before this consumer's %d:"
                " the broker lost its log; reading it again from %d",
                topic,
                partition,
                high,
                positions[partition],
                low,
            )
            consumer.seek(TopicPartition(topic, partition, low))
        return None


def lost_logs(
    positions: dict[int, int], highs: dict[int, int], behind: dict[int, tuple[int, int]]
) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Which partitions to read again, and which to watch until the next check.

    ``positions`` and ``highs`` are each partition's consumer position and log
    end now; ``behind`` is what the last check returned to watch: the position
    and log end of each partition that ended before its position. A partition
    ending before the position is read again if it was behind the same
    position at the last check too and its end has grown since; else it is
    watched.
    """
    rewind: list[int] = []
    watch: dict[int, tuple[int, int]] = {}
    for partition, position in positions.items():
        high = highs.get(partition, position)
        if high >= position:
            continue
        before = behind.get(partition)
        if before is not None and before[0] == position and high > before[1]:
            rewind.append(partition)
        else:
            watch[partition] = (position, high)
    return rewind, watch


class KafkaBus:
    """One producer per instance; one consumer per subscription. See ``open_kafka_bus``."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topic: str,
        partitions: int,
        timeout_s: float,
        slots: int = 1,
        on_failure: BackendFailure = ignore_failure,
    ) -> None:
        self._on_failure = on_failure
        self.topic = topic
        self.delivery_topic = f"{topic}.deliver"
        self._slots = slots
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
                [
                    NewTopic(self.topic, num_partitions=self._partitions, replication_factor=-1),
                    NewTopic(
                        self.delivery_topic, num_partitions=self._slots, replication_factor=-1
                    ),
                ],
                request_timeout=self._timeout_s,
            )
            try:
                for future in futures.values():
                    try:
                        future.result(timeout=self._timeout_s)
                    except KafkaException as exc:
                        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                            raise
            finally:
                del futures, admin

        try:
            with trio.fail_after(self._timeout_s + 1):
                await trio.to_thread.run_sync(create)
        except (KafkaException, trio.TooSlowError, TimeoutError) as exc:
            self._on_failure("kafka", _kind(exc))
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
            self._on_failure("kafka", _kind(exc))
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
                    if record.slot is None:
                        producer.produce(
                            self.topic,
                            key=record.key.encode(),
                            value=record.value,
                            on_delivery=delivered,
                        )
                    else:
                        producer.produce(
                            self.delivery_topic,
                            key=record.key.encode(),
                            value=record.value,
                            partition=record.slot,
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
            raise _Unconfirmed(
                f"kafka did not confirm {len(records)} records: {detail}",
                timeout=bool(left) or failures[0].code() == KafkaError._MSG_TIMED_OUT,
            )

    @asynccontextmanager
    async def subscribe(self, slot: int | None = None) -> AsyncIterator[_KafkaSubscription]:
        consumer = Consumer(
            {
                **self._common(),
                # Required by the client; offsets are never committed, no group is joined.
                "group.id": f"{self._client_id}-{secrets.token_hex(4)}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": _FETCH_WAIT_MS,
            }
        )
        try:
            with trio.fail_after(self._timeout_s * 2):
                await trio.to_thread.run_sync(self._assign_at_end, consumer, slot)
        except (KafkaException, trio.TooSlowError) as exc:
            self._on_failure("kafka", _kind(exc))
            await trio.to_thread.run_sync(consumer.close)
            raise BusUnavailable(f"kafka topic {self.topic!r} cannot be read: {exc}") from exc
        try:
            yield _KafkaSubscription(
                consumer, timeout_s=self._timeout_s, on_failure=self._on_failure
            )
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(consumer.close)

    def _assign_at_end(self, consumer: Consumer, slot: int | None) -> None:
        name = self.topic if slot is None else self.delivery_topic
        metadata = consumer.list_topics(name, timeout=self._timeout_s)
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no topic {name}"))
        if slot is not None and slot not in topic.partitions:
            raise KafkaException(
                KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no partition {name}[{slot}]")
            )
        positions = []
        for partition in sorted(topic.partitions) if slot is None else [slot]:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(name, partition), timeout=self._timeout_s
            )
            positions.append(TopicPartition(name, partition, high))
        consumer.assign(positions)

    async def aclose(self) -> None:
        """Give the producer's last records a moment to be confirmed, then close it."""
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._producer.flush, 1.0)
            await _close_producer(self._producer)


class _Unconfirmed(BusUnavailable):
    """A publish whose records were not all confirmed (``timeout``: by the deadline)."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


def _kind(exc: BaseException) -> str:
    """``timeout`` or ``error``: the kind of a failed Kafka call (``BackendFailure``)."""
    if isinstance(exc, (trio.TooSlowError, TimeoutError)):
        return "timeout"
    if isinstance(exc, _Unconfirmed):
        return "timeout" if exc.timeout else "error"
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        code = exc.args[0].code()
        return "timeout" if code in (KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT) else "error"
    return "error"


async def _close_producer(producer: Producer) -> None:
    """Destroy ``producer``'s handle on a worker thread (see the module docstring)."""
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(producer.close)


@asynccontextmanager
async def open_kafka_bus(
    bootstrap: str,
    *,
    topic: str,
    partitions: int,
    timeout_s: float,
    slots: int = 1,
    on_failure: BackendFailure = ignore_failure,
) -> AsyncIterator[KafkaBus]:
    """A Kafka bus whose topics exist, closed on exit."""
    bus = KafkaBus(
        bootstrap,
        topic=topic,
        partitions=partitions,
        timeout_s=timeout_s,
        slots=slots,
        on_failure=on_failure,
    )
    try:
        await bus.ensure_topic()
        yield bus
    finally:
        await bus.aclose()
