"""A smoke run of every bench scenario with tiny parameters against a real server.

The numbers are not checked (the bench is not a timed test); what is checked
is that each scenario runs end to end, accounts for every message and writes
its result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from bench.cli import SMOKE, main, run_one
from bench.report import Result, Timeline, compare, summarise
from bench.scenarios import _crosses, histogram_delta
from bench.server import Target

from sandcat.app import Server


@pytest.mark.parametrize(("label", "scenario", "params"), SMOKE, ids=[s[0] for s in SMOKE])
async def test_scenario_runs_and_accounts_for_everything(
    server: Server, label: str, scenario: str, params: dict[str, object]
) -> None:
    target = Target("127.0.0.1", server.ws_port, server.http_port)
    result = await run_one(target, scenario, params, pin=False)
    numbers = result.document()["numbers"]
    assert isinstance(numbers, dict)
    if scenario in ("direct", "fanout"):
        assert numbers["acked"] > 0
        assert numbers["lost"] == 0
        assert numbers["duplicates"] == 0
        assert numbers["unacked"] == 0
    elif scenario == "catchup":
        assert numbers["lost"] == 0
        assert numbers["pulled"] == numbers["expected"]
    elif scenario == "connect":
        assert numbers["connected"] == params["connections"], numbers
        assert numbers["failures"] == 0
    else:
        assert numbers["login_failures"] == 0
        assert numbers["profile_per_s"] > 0
    assert result.metrics["after"]["sandcat_connections_opened_total"] >= (
        0 if scenario == "http" else 1
    )


def test_percentiles_use_nearest_rank() -> None:
    summary = summarise([i / 1000 for i in range(1, 1001)])
    assert summary["p50"] == 500
    assert summary["p99"] == 990
    assert summary["p999"] == 999
    assert summary["max"] == 1000
    assert summarise([]) == {"count": 0}


def test_result_writes_json_and_a_plot_and_compare_prints_ratios(tmp_path: Path) -> None:
    timeline = Timeline(0.0)
    timeline.add(0.1)
    timeline.add(0.6, 3)
    other = Timeline(0.5)
    other.add(0.6)
    timeline.merge(other)
    a = Result("direct", {"pairs": 1}, numbers={"acked_per_s": 100.0})
    a.latencies = {"send_to_ack": [0.001, 0.002]}
    a.timelines = {"acks": timeline}
    path_a = a.write(tmp_path / "a")
    assert (tmp_path / "a" / "direct.png").stat().st_size > 0
    b = Result("direct", {"pairs": 1, "label": "b"}, numbers={"acked_per_s": 250.0})
    path_b = b.write(tmp_path / "b", plots=False)
    lines = compare(json.loads(path_a.read_text()), json.loads(path_b.read_text()))
    assert any(line.startswith("acked_per_s") and line.endswith("2.50") for line in lines)
    assert main(["compare", str(path_a), str(path_b)]) == 0


def test_cluster_mode_runs_from_any_directory_and_splits_what_it_measures(
    tmp_path: Path,
) -> None:
    """``python path/to/bench cluster`` (from another directory) starts PostgreSQL,
    Kafka and Redis, migrates, runs two instances with one pair on one instance and
    one across, and reports each instance's CPU and RSS, the hops and a commit probe."""
    repository = Path(__file__).parents[2]
    done = subprocess.run(
        [
            sys.executable,
            str(repository / "bench"),
            "cluster",
            "--smoke",
            "-p",
            "duration_s=0.3",
            "-p",
            "members=3",  # fanout's: ignored by direct
            "--out",
            str(tmp_path),
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "cluster-direct.json").read_text())
    numbers = document["numbers"]
    assert numbers["acked"] > 0
    assert numbers["delivered"] == numbers["acked"]
    assert numbers["lost"] == 0
    assert numbers["duplicates"] == 0
    assert document["params"]["instances"] == 2
    assert document["params"]["cross"] == 0.5
    assert document["config"]["backends.database_url"].startswith("postgresql://")
    latencies = numbers["latency_ms"]
    assert latencies["send_to_delivery_same"]["count"] > 0
    assert latencies["send_to_delivery_cross"]["count"] > 0
    assert latencies["probe_pg_commit"]["count"] > 0
    assert set(numbers["instances"]) == {"i0", "i1"}
    assert all(i["rss_bytes"] > 0 for i in numbers["instances"].values())
    # The pair across instances went through the outbox, Kafka and a consumer.
    assert numbers["hops_ms"]["i0.broker_ack"]["count"] > 0
    # Each consumer reads its own delivery slot (docs/cluster-routing.md): the share an
    # instance reads depends on where the routes pointed when each event was published
    # (all of them while a route is still unknown), never more than every event once.
    shares = numbers["events_read_share"]
    assert shares
    assert all(0 < share <= 1.0 for share in shares.values()), shares
    assert sum(counts.get("delivered", 0) for counts in numbers["bus_events"].values()) > 0


def test_cluster_mode_refuses_an_unknown_run() -> None:
    with pytest.raises(SystemExit, match="no cluster run"):
        main(["cluster", "--only", "bogus"])


def test_a_histogram_delta_is_summarised() -> None:
    before = {
        'h_bucket{hop="x",le="0.01"}': 1.0,
        'h_bucket{hop="x",le="0.1"}': 1.0,
        'h_bucket{hop="x",le="+Inf"}': 1.0,
        'h_sum{hop="x"}': 0.005,
        'h_count{hop="x"}': 1.0,
    }
    after = {
        'h_bucket{hop="x",le="0.01"}': 1.0,
        'h_bucket{hop="x",le="0.1"}': 100.0,
        'h_bucket{hop="x",le="+Inf"}': 101.0,
        'h_sum{hop="x"}': 5.005,
        'h_count{hop="x"}': 101.0,
    }
    summary = histogram_delta(before, after, 'h{hop="x"}')
    assert summary["count"] == 100
    assert summary["mean"] == 50.0
    assert 10 < summary["p50"] < 100
    assert summary["p99"] == 100.0
    assert histogram_delta(before, before, 'h{hop="x"}') == {"count": 0}
    # A sample past the last bound is reported at it.
    assert histogram_delta({}, {'g_bucket{le="+Inf"}': 1.0, "g_count": 1.0}, "g")["p99"] == 0


def test_pairs_cross_instances_evenly() -> None:
    assert [_crosses(i, 0.5) for i in range(4)] == [False, True, False, True]
    assert all(_crosses(i, 1.0) for i in range(3))
    assert not any(_crosses(i, 0.0) for i in range(3))


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(SystemExit, match="no parameter 'bogus'"):
        main(["run", "direct", "-p", "bogus=1"])


def test_cli_spawns_its_own_server(tmp_path: Path) -> None:
    """``python -m bench run`` starts ``sandcat serve``, pins it if it can, and stops it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "direct",
            "-p",
            "duration_s=0.3",
            "-p",
            "window=4",
            "-c",
            "backends.sqlite_synchronous=NORMAL",
            "--out",
            str(tmp_path),
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "direct.json").read_text())
    assert document["numbers"]["lost"] == 0
    assert document["numbers"]["server_cpu_s"] >= 0
    assert document["config"]["chat.max_group_members"] == 2000


async def test_metrics_of_an_unreachable_target_fail_loudly() -> None:
    with pytest.raises(httpx.HTTPError):
        await Target("127.0.0.1", 1, 1).metrics()
