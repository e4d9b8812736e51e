"""The metrics registry renders the Prometheus text format; counts are per registry."""

from __future__ import annotations

import gc
import math
from pathlib import Path

import httpx
import pytest

from sandcat.client import HttpApi, open_client
from sandcat.metrics import Counter, Histogram, Registry, ServerMetrics
from sandcat.process_metrics import watch_gc, watch_process
from sandcat.protocol import Op
from tests.e2e.process import serve_process


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
    metrics.watch("sandcat_connections", lambda: math.inf)
    text = metrics.registry.render()
    assert 'sandcat_frames_in_total{op="send"} 2' in text
    assert 'sandcat_frames_out_total{op="200"} 1' in text
    assert "sandcat_connections +Inf" in text
    assert "sandcat_send_ack_seconds_count 0" in text


def test_two_servers_do_not_share_metrics() -> None:
    one, two = ServerMetrics.create(), ServerMetrics.create()
    one.connections_opened.inc()
    assert two.connections_opened.value() == 0


def test_a_labeled_histogram_renders_each_series_with_le_last() -> None:
    registry = Registry()
    seconds = registry.labeled_histogram("h_seconds", "help", ("route", "method"), (0.1, 1.0))
    seconds.observe(0.05, "/a", "GET")
    seconds.observe(5.0, "/a", "GET")
    seconds.observe(0.5, "/b/<id>", "POST")
    assert (seconds.count("/a", "GET"), seconds.count("/c", "GET")) == (2, 0)
    text = registry.render()
    assert 'h_seconds_bucket{route="/a",method="GET",le="0.1"} 1' in text
    assert 'h_seconds_bucket{route="/a",method="GET",le="+Inf"} 2' in text
    assert 'h_seconds_sum{route="/a",method="GET"} 5.05' in text
    assert 'h_seconds_count{route="/b/<id>",method="POST"} 1' in text
    with pytest.raises(ValueError, match="bucket"):
        registry.labeled_histogram("empty", "help", ("a",), ())


def test_the_whole_exposition_parses_with_prometheus_client() -> None:
    """The in-house registry's text is what Prometheus' own parser reads."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics = ServerMetrics.create()
    watch_process(metrics.registry)
    metrics.registry.callback("c_total", "a callback counter", lambda: 3, kind="counter")
    metrics.observe_http("/api/v1/users/<user_id>", "GET", 200, 0.003)
    metrics.observe_http("<unmatched>", "GET", 404, 0.001)
    metrics.ws_closes.inc(1, "1000", "client")
    metrics.errors.inc(1, "http", 'odd "code"\n')
    metrics.send_to_ack.observe(0.002)
    metrics.backend_calls.inc(1, "postgres", "timeout")
    families = {f.name: f for f in text_string_to_metric_families(metrics.registry.render())}
    assert {
        "process_resident_memory_bytes",
        "process_cpu_seconds",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "sandcat_http_requests",
        "sandcat_http_request_seconds",
        "sandcat_ws_closes",
        "sandcat_errors",
        "sandcat_backend_call_errors",
        "c",
    } <= set(families)
    (failed,) = families["sandcat_backend_call_errors"].samples
    assert (failed.labels, failed.value) == ({"backend": "postgres", "kind": "timeout"}, 1)
    assert families["process_resident_memory_bytes"].samples[0].value > 1_000_000
    assert families["process_open_fds"].samples[0].value >= 3
    requests = {
        tuple(sorted(s.labels.items())): s.value for s in families["sandcat_http_requests"].samples
    }
    key = (("method", "GET"), ("route", "/api/v1/users/<user_id>"), ("status", "200"))
    assert requests[key] == 1
    buckets = [
        s for s in families["sandcat_http_request_seconds"].samples if s.name.endswith("_bucket")
    ]
    assert {s.labels["route"] for s in buckets} == {"/api/v1/users/<user_id>", "<unmatched>"}
    errors = families["sandcat_errors"].samples[0]
    assert errors.labels["code"] == 'odd "code"\n'


async def test_gc_pauses_are_timed_while_watched_and_not_after() -> None:
    registry = Registry()
    async with watch_gc(registry) as pauses:
        gc.collect(1)
        assert pauses.count("1") == 1
    gc.collect(1)
    assert pauses.count("1") == 1
    assert 'python_gc_pause_seconds_count{generation="1"} 1' in registry.render()


async def test_a_real_server_counts_requests_by_route_and_closes_by_code(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    async with serve_process(tmp_path / "data") as server:
        async with HttpApi(server.http_url) as api:
            user = await api.register("ann", "correct horse 1")
            login = await api.login("ann", "correct horse 1")
            await api.user(login.tokens.access_token, user.id)
        async with open_client(
            server.http_url, login="ann", password="correct horse 1", device="d"
        ) as client:
            await client.access_token()
        async with httpx.AsyncClient() as raw:
            text = (await raw.get(f"{server.http_url}/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(family: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[family].samples
            if s.labels.items() >= labels.items() and not s.name.endswith(("_bucket", "_sum"))
        )

    assert value("sandcat_http_requests", route="/api/v1/auth/login", status="200") == 2
    assert value("sandcat_http_requests", route="/api/v1/users/<user_id>", method="GET") == 1
    assert value("sandcat_http_request_seconds", route="/api/v1/auth/register") == 1
    assert value("sandcat_ws_closes", code="1000", by="client") == 1
    assert value("sandcat_connected_users") == 0
    assert "python_gc_pause_seconds" in families
    assert value("process_cpu_seconds") > 0


def test_the_readme_metrics_table_lists_every_family_a_server_exports() -> None:
    """README's "Metrics" table is the operator's list: no family missing, none made up."""
    import re

    import trio

    from sandcat.metrics import WATCHED

    metrics = ServerMetrics.create()
    watch_process(metrics.registry)

    async def gc_family() -> None:
        async with watch_gc(metrics.registry):
            pass

    trio.run(gc_family)
    for name in WATCHED:
        metrics.watch(name, lambda: 0)
    exported = set(re.findall(r"^# TYPE (\S+)", metrics.registry.render(), re.MULTILINE))
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed = {
        name.split("{")[0]
        for row in rows
        for name in re.findall(r"`([a-z_]+(?:\{[a-z_,]+\})?)`", row.split("|")[1])
    }
    assert listed == exported
    scopes = {row.split("|")[1].strip(): row.split("|")[3].strip() for row in rows}
    assert scopes["`sandcat_registered_users`"] == scopes["`sandcat_active_sessions`"] == "cluster"
    assert set(scopes.values()) == {"instance", "cluster"}
