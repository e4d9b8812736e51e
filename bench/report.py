"""Bench results: the numbers, the JSON file, the plots, and comparing two runs."""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sandcat

#: Throughput over time is counted in slots of this many seconds.
SLOT_S = 0.25
_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))


def summarise(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p999/max/mean (in ms) and the count of a latency sample."""
    if not latencies_s:
        return {"count": 0}
    ordered = sorted(latencies_s)
    count = len(ordered)
    summary: dict[str, float] = {"count": count}
    for name, q in _PERCENTILES:
        # Nearest rank: the smallest value with at least q% of the sample at or below it.
        rank = max(1, math.ceil(round(q / 100 * count, 6)))
        summary[name] = round(ordered[rank - 1] * 1000, 3)
    summary["max"] = round(ordered[-1] * 1000, 3)
    summary["mean"] = round(sum(ordered) / count * 1000, 3)
    return summary


class Timeline:
    """Events counted per ``SLOT_S`` since ``start`` (``time.perf_counter`` seconds)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.slots: list[int] = []

    def add(self, at: float, count: int = 1) -> None:
        slot = int((at - self.start) / SLOT_S)
        if slot < 0:
            slot = 0
        if slot >= len(self.slots):
            self.slots.extend([0] * (slot + 1 - len(self.slots)))
        self.slots[slot] += count

    def merge(self, other: Timeline) -> None:
        offset = round((other.start - self.start) / SLOT_S)
        for index, count in enumerate(other.slots):
            if count:
                self.add(self.start + (index + offset + 0.5) * SLOT_S, count)

    def rates(self) -> list[float]:
        return [count / SLOT_S for count in self.slots]


def git_sha() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


@dataclass
class Result:
    scenario: str
    params: dict[str, object]
    numbers: dict[str, object] = field(default_factory=dict)
    #: Latency samples by name (seconds); summarised into ``numbers`` when written.
    latencies: dict[str, list[float]] = field(default_factory=dict)
    #: Throughput series by name.
    timelines: dict[str, Timeline] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    machine: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def document(self) -> dict[str, object]:
        numbers = dict(self.numbers)
        numbers["latency_ms"] = {name: summarise(s) for name, s in self.latencies.items()}
        return {
            "scenario": self.scenario,
            "params": self.params,
            "version": sandcat.__version__,
            "git_sha": git_sha(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": self.config,
            "machine": self.machine,
            "numbers": numbers,
            "throughput_per_s": {
                name: {"slot_s": SLOT_S, "rates": timeline.rates()}
                for name, timeline in self.timelines.items()
            },
            "metrics": self.metrics,
        }

    def write(self, out: Path, *, plots: bool = True) -> Path:
        """Write ``<scenario>.json`` (and ``.png``) into ``out``; the JSON path."""
        out.mkdir(parents=True, exist_ok=True)
        stem = self.scenario if not self.params.get("label") else str(self.params["label"])
        path = out / f"{stem}.json"
        path.write_text(json.dumps(self.document(), indent=1, sort_keys=True) + "\n")
        if plots:
            self.plot(out / f"{stem}.png")
        return path

    def plot(self, path: Path) -> None:
        """One small PNG: latency CDFs (left) and throughput over time (right)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (cdf, rate) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=80)
        for name, sample in self.latencies.items():
            if sample:
                ordered = sorted(sample)
                ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
                cdf.plot([s * 1000 for s in ordered], ys, label=name)
        cdf.set_xscale("log")
        cdf.set_xlabel("latency (ms, log)")
        cdf.set_ylabel("fraction")
        cdf.set_title("latency CDF")
        if self.latencies:
            cdf.legend(fontsize="small")
        for name, timeline in self.timelines.items():
            rates = timeline.rates()
            rate.plot([i * SLOT_S for i in range(len(rates))], rates, label=name)
        rate.set_xlabel("time (s)")
        rate.set_ylabel("per second")
        rate.set_title("throughput")
        if self.timelines:
            rate.legend(fontsize="small")
        figure.suptitle(f"{self.scenario} {_brief(self.params)}", fontsize="small")
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def _brief(params: Mapping[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if k != "label")


def _flatten(prefix: str, value: object, into: dict[str, float]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        into[prefix] = float(value)


def compare(a: Mapping[str, object], b: Mapping[str, object]) -> list[str]:
    """Lines comparing every number of result ``a`` with ``b`` (ratio b/a)."""
    left: dict[str, float] = {}
    right: dict[str, float] = {}
    _flatten("", a.get("numbers", {}), left)
    _flatten("", b.get("numbers", {}), right)
    lines = [
        f"{a.get('scenario')} {str(a.get('git_sha', ''))[:10]} -> "
        f"{b.get('scenario')} {str(b.get('git_sha', ''))[:10]}",
        f"{'number':<40} {'A':>12} {'B':>12} {'B/A':>8}",
    ]
    for key in sorted(left.keys() | right.keys()):
        x, y = left.get(key), right.get(key)
        ratio = "" if not x or y is None else f"{y / x:.2f}"
        lines.append(f"{key:<40} {_cell(x):>12} {_cell(y):>12} {ratio:>8}")
    return lines


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def load(paths: Iterable[Path]) -> list[dict[str, object]]:
    return [json.loads(path.read_text()) for path in paths]
