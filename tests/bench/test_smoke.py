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


def test_cluster_mode_runs_direct_across_two_instances(tmp_path: Path) -> None:
    """``python -m bench cluster`` starts PostgreSQL, Kafka and Redis, migrates, runs
    two instances (senders on one, receivers on the other) and stops everything."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "cluster",
            "--smoke",
            "-p",
            "duration_s=0.3",
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
    document = json.loads((tmp_path / "cluster-direct.json").read_text())
    numbers = document["numbers"]
    assert numbers["acked"] > 0
    assert numbers["delivered"] == numbers["acked"]
    assert numbers["lost"] == 0
    assert numbers["duplicates"] == 0
    assert document["params"]["instances"] == 2
    assert document["config"]["backends.database_url"].startswith("postgresql://")


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
