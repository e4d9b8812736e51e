"""``python -m tests.chaos.soak``: the soak run (``nox -s soak``; not in CI).

Three instances behind fault proxies; the chaos cast sends at ``--rate``
messages/s in all; ``--connections`` idle devices (users of their own, in no
busy conversation) stay connected across the instances and ``--churn`` of them
are closed and reconnected every minute (in a process of their own,
``tests/chaos/idle.py``, so that they do not slow the fault proxies that carry
the instances' PostgreSQL and Redis links). Every device renews its access
token before it expires, like the SDK (``tests/chaos/tokens.py``). F15's
seeded fault schedule runs the whole time. Every 10 s the RSS of each instance
is sampled; every minute a line of numbers (sends, acks, p99 ack latency that
minute, RSS, idle connections up, token renewals, load average) is appended
to ``OUT/minutes.jsonl``, so a run cut short still leaves its numbers. At the
end the load stops, the devices converge, the checker judges the whole
history, and ``OUT/summary.json`` and ``OUT/rss.png`` are written. It stops by
itself: the whole run is bounded by ``--minutes`` plus ``HARD_LIMIT_EXTRA_S``,
and a signal still writes the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from tests.chaos import faults, idle, workload
from tests.chaos.cluster import Cluster, running_cluster
from tests.chaos.faults import _rss_kib, p99
from tests.chaos.tokens import TokenSource
from tests.chaos.workload import PASSWORD, Cast, Numbers, make_cast, run_scenario

SOAK_TOML = """
[gateway]
max_connections_per_user = 2000
# Every soak client shares 127.0.0.1: 2,000 idle devices (re)connecting at once
# would otherwise be capped as one address's sockets before HELLO.
max_unauthenticated_per_address = 5000
"""
#: How long past ``--minutes`` the quiesce, convergence and check may take before
#: the run is stopped (and still writes its summary).
HARD_LIMIT_EXTRA_S = 900


async def _soak(args: argparse.Namespace, cluster: Cluster, cast: Cast, out: Path) -> Numbers:
    logins = await trio.to_thread.run_sync(idle.register, cluster, args.connections)
    rss: list[dict[str, object]] = []
    schedule: list[str] = []
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"soak: seed {seed}, {len(logins)} idle devices, {args.rate} msgs/s", flush=True)
    source = TokenSource([i.http_url for i in cluster.instances], PASSWORD)
    for d in cast.devices:
        assert d.tokens is not None
        d.credentials = source.credentials(d.login, d.name, d.tokens)
    minutes = out / "minutes.jsonl"
    logins_file = out / "idle-logins.json"
    status_file = out / "idle-status.json"
    idle.write_logins(logins_file, cluster, logins)

    def idle_status() -> dict[str, int]:
        try:
            return dict(json.loads(status_file.read_text()))
        except (OSError, ValueError):
            return {}

    async def body(numbers: Numbers) -> None:
        begun = time.monotonic()
        # The idle devices run in a process of their own (tests/chaos/idle.py).
        worker = subprocess.Popen(  # noqa: ASYNC220 - spawned once, waited for below
            [
                sys.executable,
                "-m",
                "tests.chaos.idle",
                str(logins_file),
                "--status",
                str(status_file),
                "--seconds",
                str(args.minutes * 60),
                "--churn",
                str(args.churn),
                "--seed",
                str(seed),
            ]
        )
        try:
            await _load(numbers, begun, worker)
        finally:
            if worker.poll() is None:
                worker.terminate()
            try:
                worker.wait(timeout=15)  # blocking: this may run in a cancelled scope
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for n, instance in enumerate(cluster.instances):
            if not instance.running:
                await faults._restart(cluster, n)
        numbers.extra.update(seed=seed, faults=len(schedule), schedule=schedule)

    async def _load(numbers: Numbers, begun: float, worker: subprocess.Popen[bytes]) -> None:
        async with trio.open_nursery() as nursery:
            f15 = faults.f15_schedule(cluster, seed, args.minutes * 60, schedule)
            f15_done = trio.Event()

            async def run_f15() -> None:
                try:
                    await f15(Numbers("f15"))
                finally:
                    f15_done.set()

            nursery.start_soon(run_f15)
            minute = 0
            sent = 0
            while time.monotonic() - begun < args.minutes * 60:
                await trio.sleep(10)
                pids = {i.name: i.pid if i.running else 0 for i in cluster.instances}
                sample = {
                    "t_s": round(time.monotonic() - begun),
                    "rss_mib": {
                        name: round(_rss_kib(pid) / 1024, 1) if pid else None
                        for name, pid in pids.items()
                    },
                    "pids": pids,
                }
                rss.append(sample)
                if time.monotonic() - begun >= (minute + 1) * 60:
                    minute += 1
                    ops = cast.history.ops
                    now = time.monotonic()
                    lat = faults._ack_latencies(cast.history, now - 60, now)
                    status = idle_status()
                    line = {
                        "minute": minute,
                        "attempts": len(ops),
                        "new_attempts": len(ops) - sent,
                        "acked_this_minute": len(lat),
                        "p99_ack_s": round(p99(lat), 3),
                        "idle_up": status.get("up"),
                        "idle_worker_running": worker.poll() is None,
                        "rss_mib": sample["rss_mib"],
                        "pids": pids,
                        "faults_so_far": len(schedule),
                        "refreshes": source.refreshes + status.get("refreshes", 0),
                        "relogins": source.logins + status.get("relogins", 0),
                        "token_failures": source.failures + status.get("token_failures", 0),
                        "auths": sum(d.auths for d in cast.devices) + status.get("auths", 0),
                        "hello_refused": status.get("hello_refused", 0),
                        "load": [round(x, 2) for x in os.getloadavg()],
                    }
                    sent = len(ops)
                    if minute in args.trace_minutes:
                        for name, pid in pids.items():
                            if pid:
                                os.kill(pid, signal.SIGUSR2)  # tests/chaos/traced.py
                                line.setdefault("traced", []).append(f"{name}:{pid}")
                    with minutes.open("a") as file:
                        file.write(json.dumps(line) + "\n")
                    print(f"soak {line}", flush=True)
            # F15 ends by itself; cancelling it mid-fault could leave a backend down.
            with trio.move_on_after(120):
                await f15_done.wait()
            nursery.cancel_scope.cancel()

    ended = ""
    numbers = Numbers("soak")
    verdict = "FAIL: the run ended before the checker"
    async with source, trio.open_nursery() as guard:

        async def stop_on_signal() -> None:
            nonlocal ended
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as got:
                async for signum in got:
                    ended = f"stopped by signal {signum}"
                    guard.cancel_scope.cancel()

        guard.start_soon(stop_on_signal)
        # Whatever else happens, the run ends: the load, quiesce, converge and check.
        with trio.move_on_after(args.minutes * 60 + HARD_LIMIT_EXTRA_S) as limit:
            try:
                numbers = await run_scenario(cluster, cast, "soak", body)
                verdict = "pass"
            except Exception as exc:  # the soak reports whatever ended it
                numbers.counts = cast.history.counts()
                verdict = f"FAIL: {exc!r}"[:20000]
                faults.dump_history(cast.history, out / "history.json")
        if limit.cancelled_caught:
            ended = f"stopped at the hard limit ({HARD_LIMIT_EXTRA_S} s past the load)"
        guard.cancel_scope.cancel()
    if ended:
        verdict = f"FAIL: {ended}" if verdict != "pass" else verdict
        numbers.counts = numbers.counts or cast.history.counts()
    ok = [
        op.completed - op.invoked for op in cast.history.ops if op.outcome == "ok" and op.completed
    ]
    summary = {
        "minutes": args.minutes,
        "connections": args.connections,
        "rate": args.rate,
        "churn": args.churn,
        "access_ttl_s": args.access_ttl,
        "seed": seed,
        "counts": numbers.counts,
        "p99_ack_s": round(p99(ok), 3),
        "converge_s": round(numbers.converge_s, 1),
        "resolve_s": round(numbers.resolve_s, 1),
        "faults": schedule,
        "tokens": {
            "refreshes": source.refreshes,
            "relogins": source.logins,
            "failures": source.failures,
        },
        "ended": ended,
        "verdict": verdict,
        "load_at_end": os.getloadavg(),
        "rss": rss,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if rss:
        _plot(rss, out / "rss.png")
    print(f"soak verdict: {verdict[:2000]}", flush=True)
    return numbers


def _plot(rss: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    names = sorted({name for s in rss for name in s["rss_mib"]})  # type: ignore[attr-defined]
    for name in names:
        points = [
            (int(s["t_s"]) / 60, s["rss_mib"][name])  # type: ignore[call-overload, index]
            for s in rss
            if s["rss_mib"][name] is not None  # type: ignore[index]
        ]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax.set_xlabel("minute")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Soak: instance RSS (a drop is a SIGKILL restart by F15)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200, help="sends/s over the whole cast")
    parser.add_argument("--churn", type=float, default=0.05, help="idle devices churned a minute")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak"))
    parser.add_argument(
        "--access-ttl",
        type=int,
        default=900,
        help="the servers' auth.access_ttl_s (a short one proves the renewals)",
    )
    parser.add_argument(
        "--trace-at",
        default="",
        help="minutes (comma-separated) at which each instance, run under tracemalloc "
        "(tests/chaos/traced.py), writes a snapshot to OUT/trace",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.trace_minutes = {int(m) for m in args.trace_at.split(",") if m}
    entry = None
    if args.trace_minutes:
        (args.out / "trace").mkdir(exist_ok=True)
        os.environ["CHAOS_TRACE_DIR"] = str((args.out / "trace").resolve())
        entry = ["-m", "tests.chaos.traced"]
    # cluster_toml ends inside [auth]: the key goes there, then the soak's tables.
    extra = f"access_ttl_s = {args.access_ttl}\n{SOAK_TOML}"
    with running_cluster(3, proxied=True, extra_toml=extra, entry=entry) as cluster:
        cast = make_cast(cluster)
        proxied = [f"ws://127.0.0.1:{cluster.proxy(n, 'ws').port}/ws" for n in range(3)]
        for device in cast.devices:
            device.urls = proxied
        faults.RESTART_ATTEMPTS = 40
        workload.SENDERS_PER_DEVICE = 8
        workload.RATE_PER_S = args.rate / len(cast.devices) / workload.SENDERS_PER_DEVICE
        trio.run(_soak, args, cluster, cast, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
