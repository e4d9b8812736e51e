"""Server metrics in the Prometheus text format (exposition format 0.0.4).

A ``Registry`` is created by the composition root and handed to whatever
records into it: there is no global registry, so two servers in one process
(tests) keep their numbers apart. Recording is cheap enough for the hot path
(a dict lookup and an add; a histogram adds a bisect), and nothing is
formatted until ``GET /metrics`` asks for ``render()``.

Values that already live somewhere else (the number of connections, the depth
of a queue) are not copied on every change: a ``Gauge`` may be given a
function that is called at render time.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sandcat.protocol import Op

#: Latency buckets in seconds: 0.1 ms to 10 s, roughly x2.5 apart.
LATENCY_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Size buckets (persister batches, pulled pages): powers of two up to 4096.
SIZE_BUCKETS = tuple(float(1 << n) for n in range(13))

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing count, optionally split by labels."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {} if labels else {(): 0.0}

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        """Add ``amount`` (≥ 0) to the series named by ``labels`` (in declaration order)."""
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down")
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def samples(self) -> list[str]:
        lines = self._header()
        for labels, value in sorted(self._values.items()):
            lines.append(f"{self.name}{_format_labels(self.label_names, labels)} {_number(value)}")
        return lines


class Gauge(_Metric):
    """A value that goes up and down; set directly or read from ``source`` at render time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        source: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help_text, ())
        self._value = 0.0
        self._source = source

    def set(self, value: float) -> None:
        self._value = value

    def value(self) -> float:
        return float(self._source()) if self._source is not None else self._value

    def samples(self) -> list[str]:
        return [*self._header(), f"{self.name} {_number(self.value())}"]


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text, ())
        bounds = sorted(set(buckets))
        if not bounds:
            raise ValueError(f"{name}: a histogram needs at least one bucket")
        self._bounds = bounds
        # One slot per bound plus the +Inf overflow; made cumulative at render time.
        self._counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self.sum += value
        self.count += 1

    def samples(self) -> list[str]:
        lines = self._header()
        running = 0
        for bound, count in zip([*self._bounds, math.inf], self._counts, strict=True):
            running += count
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        lines.append(f"{self.name}_sum {_number(self.sum)}")
        lines.append(f"{self.name}_count {self.count}")
        return lines


class LabeledHistogram(_Metric):
    """A histogram per combination of label values (``observe(value, *labels)``)."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Iterable[float]
    ) -> None:
        super().__init__(name, help_text, labels)
        self._bounds = sorted(set(buckets))
        if not self._bounds:
            raise ValueError(f"{name}: a histogram needs at least one bucket")
        #: Per series: bucket counts (+Inf last), then the sum and the count.
        self._series: dict[Labels, list[float]] = {}

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self._bounds) + 3)
        series[bisect.bisect_left(self._bounds, value)] += 1
        series[-2] += value
        series[-1] += 1

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return 0 if series is None else int(series[-1])

    def samples(self) -> list[str]:
        lines = self._header()
        for labels, series in sorted(self._series.items()):
            running = 0.0
            for bound, count in zip([*self._bounds, math.inf], series, strict=False):
                running += count
                le = f'le="{_number(bound)}"'
                lines.append(
                    f"{self.name}_bucket{_format_labels(self.label_names, labels, le)} "
                    f"{_number(running)}"
                )
            tags = _format_labels(self.label_names, labels)
            lines.append(f"{self.name}_sum{tags} {_number(series[-2])}")
            lines.append(f"{self.name}_count{tags} {_number(series[-1])}")
        return lines


class Callback(_Metric):
    """One value of any kind (a counter kept elsewhere, too) read at render time."""

    def __init__(self, name: str, help_text: str, kind: str, source: Callable[[], float]) -> None:
        super().__init__(name, help_text, ())
        self.kind = kind
        self._source = source

    def samples(self) -> list[str]:
        return [*self._header(), f"{self.name} {_number(float(self._source()))}"]


class Registry:
    """Every metric of one server instance, rendered together for ``GET /metrics``."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def add(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labels)
        self.add(metric)
        return metric

    def gauge(self, name: str, help_text: str, source: Callable[[], float] | None = None) -> Gauge:
        metric = Gauge(name, help_text, source)
        self.add(metric)
        return metric

    def histogram(self, name: str, help_text: str, buckets: Iterable[float]) -> Histogram:
        metric = Histogram(name, help_text, buckets)
        self.add(metric)
        return metric

    def labeled_histogram(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Iterable[float]
    ) -> LabeledHistogram:
        metric = LabeledHistogram(name, help_text, labels, buckets)
        self.add(metric)
        return metric

    def callback(
        self, name: str, help_text: str, source: Callable[[], float], kind: str = "gauge"
    ) -> Callback:
        metric = Callback(name, help_text, kind, source)
        self.add(metric)
        return metric

    def render(self) -> str:
        """The text exposition of every metric, sorted by name."""
        lines: list[str] = []
        for name in sorted(self._metrics):
            lines.extend(self._metrics[name].samples())
        return "\n".join(lines) + "\n"


#: The media type of ``Registry.render()``'s output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OpCounter(_Metric):
    """A counter per frame op, indexed by the op number (the hot path's cheapest count).

    ``counts[op] += 1`` is all a recording costs; ``names`` gives the label
    value of each op, and ops without a name are rendered as their number.
    """

    kind = "counter"

    def __init__(self, name: str, help_text: str, names: Mapping[int, str]) -> None:
        super().__init__(name, help_text, ("op",))
        self._names = dict(names)
        self.counts = [0] * 256

    def samples(self) -> list[str]:
        lines = self._header()
        for op, count in enumerate(self.counts):
            if count:
                label = self._names.get(op, str(op))
                lines.append(f'{self.name}{{op="{label}"}} {count}')
        return lines


#: The gauges read from live objects whenever the metrics are rendered (app.py
#: wires each to its source with ``ServerMetrics.watch``), with their help.
WATCHED: Final[Mapping[str, str]] = {
    "sandcat_connections": "Authenticated WebSocket connections (this instance).",
    "sandcat_open_sockets": (
        "Open WebSocket connections, authenticated or not, from accept to close (this instance)."
    ),
    "sandcat_connected_users": (
        "Users with at least one authenticated WebSocket connection (this instance)."
    ),
    "sandcat_outbound_queue_frames": "Frames waiting in the outbound queues of all connections.",
    "sandcat_send_queue_depth": "Sends waiting for the sequencer.",
}


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """The metrics one Sandcat instance records (README, "Metrics", lists them)."""

    registry: Registry
    frames_in: OpCounter
    frames_out: OpCounter
    errors: Counter
    connections_opened: Counter
    send_to_commit: Histogram
    send_to_ack: Histogram
    batch_size: Histogram
    store_append: Histogram
    store_read: Histogram
    http_requests: Counter
    http_seconds: LabeledHistogram
    ws_closes: Counter
    bus_publish: Histogram
    outbox_relayed: Counter
    outbox_last_batch: Gauge
    relay_errors: Counter
    backend_calls: Counter
    registered_users: Gauge
    active_sessions: Gauge
    cluster_connections: Gauge
    relay_hops: LabeledHistogram
    bus_events: Counter
    route_lookups: Counter
    leases_held: Gauge

    @classmethod
    def create(cls, registry: Registry | None = None) -> ServerMetrics:
        registry = registry or Registry()
        names = {int(op): op.name.lower() for op in Op}
        frames_in = OpCounter(
            "sandcat_frames_in_total", "Frames received from clients, by op.", names
        )
        frames_out = OpCounter(
            "sandcat_frames_out_total",
            "Frames queued to clients (one per recipient), by op.",
            names,
        )
        registry.add(frames_in)
        registry.add(frames_out)
        return cls(
            registry=registry,
            frames_in=frames_in,
            frames_out=frames_out,
            errors=registry.counter(
                "sandcat_errors_total",
                "Errors answered to clients, by transport (ws, http) and code.",
                ("transport", "code"),
            ),
            connections_opened=registry.counter(
                "sandcat_connections_opened_total", "WebSocket connections accepted."
            ),
            send_to_commit=registry.histogram(
                "sandcat_send_commit_seconds",
                "From a SEND leaving its reader to its batch being committed.",
                LATENCY_BUCKETS_S,
            ),
            send_to_ack=registry.histogram(
                "sandcat_send_ack_seconds",
                "From a SEND leaving its reader to its ack being queued to the sender.",
                LATENCY_BUCKETS_S,
            ),
            batch_size=registry.histogram(
                "sandcat_persister_batch_size", "Sends per group-commit transaction.", SIZE_BUCKETS
            ),
            store_append=registry.histogram(
                "sandcat_store_append_seconds",
                "Duration of one group-commit transaction (send path).",
                LATENCY_BUCKETS_S,
            ),
            store_read=registry.histogram(
                "sandcat_store_read_seconds",
                "Duration of one store read on the socket (PULL, SYNC).",
                LATENCY_BUCKETS_S,
            ),
            http_requests=registry.counter(
                "sandcat_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
                ("route", "method", "status"),
            ),
            http_seconds=registry.labeled_histogram(
                "sandcat_http_request_seconds",
                "HTTP request durations, by route template and method.",
                ("route", "method"),
                LATENCY_BUCKETS_S,
            ),
            ws_closes=registry.counter(
                "sandcat_ws_closes_total",
                "WebSocket connections closed, by close code and by whom (client, server).",
                ("code", "by"),
            ),
            bus_publish=registry.histogram(
                "sandcat_bus_publish_seconds",
                "Publishing one outbox batch to Kafka (cluster mode).",
                LATENCY_BUCKETS_S,
            ),
            outbox_relayed=registry.counter(
                "sandcat_outbox_relayed_total", "Outbox rows published to Kafka and removed."
            ),
            outbox_last_batch=registry.gauge(
                "sandcat_outbox_pending_rows",
                "Rows this instance's outbox held at its last read, up to outbox_batch "
                "(at outbox_batch: a backlog).",
            ),
            relay_errors=registry.counter(
                "sandcat_backend_errors_total",
                "Failed backend calls seen by the outbox relay, by backend (database, kafka).",
                ("backend",),
            ),
            backend_calls=registry.counter(
                "sandcat_backend_call_errors_total",
                "Driver calls that failed, counted where they failed (the adapter), by backend "
                "(postgres, sqlite, redis, mongo, s3, kafka) and kind (timeout: a deadline "
                "passed; error: any other failure).",
                ("backend", "kind"),
            ),
            registered_users=registry.gauge(
                "sandcat_registered_users",
                "Accounts in the database, disabled ones included (cluster-wide, "
                "re-read every http.census_interval_s).",
            ),
            active_sessions=registry.gauge(
                "sandcat_active_sessions",
                "Sessions (signed-in devices) neither revoked nor expired (cluster-wide, "
                "re-read every http.census_interval_s).",
            ),
            cluster_connections=registry.gauge(
                "sandcat_cluster_connections",
                "Authenticated WebSocket connections of every running instance, from the counts "
                "each reports to Redis every http.census_interval_s (cluster-wide; without "
                "Redis: this instance's).",
            ),
            relay_hops=registry.labeled_histogram(
                "sandcat_relay_hop_seconds",
                "Age of a message (since its transaction began, wall clock) at each hop of the "
                "cross-instance path: outbox_read and broker_ack (oldest row of a batch, "
                "publisher), consumed and delivered (every event, consumer).",
                ("hop",),
                LATENCY_BUCKETS_S,
            ),
            bus_events=registry.counter(
                "sandcat_bus_events_total",
                "Events the consumer read from the bus, by outcome: own (committed here), "
                "duplicate, delivered (to at least one local device), unrouted (none here).",
                ("outcome",),
            ),
            route_lookups=registry.counter(
                "sandcat_route_lookups_total",
                "Publisher batches routed to delivery slots, by outcome: routed (by the route "
                "table), or sent to every slot because of redis_error, settling (the table was "
                "restarted) or unknown_instance.",
                ("outcome",),
            ),
            leases_held=registry.gauge(
                "sandcat_leases_held",
                "Cluster singleton tasks this instance runs now, each under its lease "
                "(worker and all roles on PostgreSQL; docs/roles.md).",
            ),
        )

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (``sandcat.api.access`` calls it)."""
        self.http_requests.inc(1, route, method, str(status))
        self.http_seconds.observe(seconds, route, method)

    def watch(self, name: str, source: Callable[[], float]) -> None:
        """Register the gauge ``name`` (one of ``WATCHED``), read from ``source``
        whenever the metrics are rendered."""
        self.registry.gauge(name, WATCHED[name], source)
