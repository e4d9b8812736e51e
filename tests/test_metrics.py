"""The metrics registry renders the Prometheus text format; counts are per registry."""

from __future__ import annotations

import math

import pytest

from sandcat.metrics import Counter, Histogram, Registry, ServerMetrics
from sandcat.protocol import Op


def _lines(registry: Registry) -> list[str]:
    return registry.render().splitlines()


def test_counter_with_labels_renders_one_sample_per_series() -> None:
    registry = Registry()
    errors = registry.counter("t_errors_total", "Errors.", ("code",))
    errors.inc(1, "forbidden")
    errors.inc(2, "forbidden")
    errors.inc(1, 'we"ird\\\n')
    assert errors.value("forbidden") == 3
    assert _lines(registry) == [
        "# HELP t_errors_total Errors.",
        "# TYPE t_errors_total counter",
        't_errors_total{code="forbidden"} 3',
        't_errors_total{code="we\\"ird\\\\\\n"} 1',
    ]


def test_counter_without_labels_starts_at_zero_and_refuses_to_go_down() -> None:
    registry = Registry()
    opened = registry.counter("t_opened_total", "Opened.")
    assert "t_opened_total 0" in _lines(registry)
    opened.inc(0.5)
    assert "t_opened_total 0.5" in _lines(registry)
    with pytest.raises(ValueError, match="cannot go down"):
        opened.inc(-1)


def test_gauge_is_set_or_read_from_its_source_at_render_time() -> None:
    registry = Registry()
    depth = [0]
    registry.gauge("t_depth", "Depth.", lambda: depth[0])
    level = registry.gauge("t_level", "Level.")
    depth[0] = 7
    level.set(-2.5)
    lines = _lines(registry)
    assert "t_depth 7" in lines
    assert "t_level -2.5" in lines


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count() -> None:
    registry = Registry()
    latency = registry.histogram("t_seconds", "Latency.", [0.1, 0.01])
    for value in (0.005, 0.01, 0.05, 3.0):
        latency.observe(value)
    assert _lines(registry)[2:] == [
        't_seconds_bucket{le="0.01"} 2',
        't_seconds_bucket{le="0.1"} 3',
        't_seconds_bucket{le="+Inf"} 4',
        "t_seconds_sum 3.065",
        "t_seconds_count 4",
    ]


def test_histogram_needs_a_bucket_and_names_are_unique() -> None:
    with pytest.raises(ValueError, match="at least one bucket"):
        Histogram("t", "t", [])
    registry = Registry()
    registry.counter("t_total", "t")
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("t_total", "again")
    assert isinstance(Counter("x", "x").samples(), list)


def test_server_metrics_count_frames_by_op_name() -> None:
    metrics = ServerMetrics.create()
    metrics.frames_in.counts[Op.SEND] += 2
    metrics.frames_out.counts[200] += 1
    metrics.watch("t_conns", "Connections.", lambda: math.inf)
    text = metrics.registry.render()
    assert 'sandcat_frames_in_total{op="send"} 2' in text
    assert 'sandcat_frames_out_total{op="200"} 1' in text
    assert "t_conns +Inf" in text
    assert "sandcat_send_ack_seconds_count 0" in text


def test_two_servers_do_not_share_metrics() -> None:
    one, two = ServerMetrics.create(), ServerMetrics.create()
    one.connections_opened.inc()
    assert two.connections_opened.value() == 0
