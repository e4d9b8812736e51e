"""``python -m bench``: run a scenario, the standard set, or compare two results."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import trio

from bench.report import Result, compare, load
from bench.scenarios import SCENARIOS, Context
from bench.server import Target, spawn

#: Server settings for bench runs: production defaults except what a scenario needs.
SERVER_CONFIG: Mapping[str, object] = {
    # fanout runs a 1,000-member group; the default cap is 500.
    "chat.max_group_members": 2000,
    # The per-connection rate limit (1,000 frames/s by default) would cap one
    # pair at 1,200 sends/s over 10 s: the bench measures capacity, not policy.
    "gateway.rate_per_s": 1_000_000,
    "gateway.rate_burst": 1_000_000,
    # Every bench user registers, logs in and befriends from 127.0.0.1: the
    # per-address and per-user limits would stop the setup of any larger run.
    "auth.login_failures_per_ip": 1_000_000,
    "auth.registrations_per_ip": 1_000_000,
    "chat.friend_requests_per_user": 1_000_000,
    "chat.friend_requests_per_ip": 1_000_000,
    # connect opens its connections as 10 users (32 each by default).
    "gateway.max_connections_per_user": 100_000,
}

#: The standard set ``nox -s bench`` runs: (label, scenario, params). Minutes, not hours.
STANDARD: list[tuple[str, str, dict[str, object]]] = [
    ("direct-max", "direct", {"pairs": 1, "window": 256, "duration_s": 10.0}),
    ("direct-max-10", "direct", {"pairs": 10, "window": 64, "duration_s": 10.0}),
    ("direct-2500", "direct", {"pairs": 10, "rate": 2500.0, "window": 1024, "duration_s": 10.0}),
    ("fanout-100", "fanout", {"members": 100, "senders": 4, "window": 8, "duration_s": 10.0}),
    ("fanout-1000", "fanout", {"members": 1000, "senders": 1, "window": 4, "duration_s": 10.0}),
    # The fan-out target at a fixed rate: 55 messages/s x 999 members = 54,945 deliveries/s.
    (
        "fanout-1000-55k",
        "fanout",
        {"members": 1000, "senders": 1, "window": 16, "rate": 55.0, "duration_s": 10.0},
    ),
    ("catchup", "catchup", {"messages": 20000, "conversations": 10}),
    ("http", "http", {"duration_s": 3.0}),
    ("connect-10k", "connect", {"connections": 10000, "hold_s": 3.0}),
]
#: Tiny parameters: the smoke run the test suite does.
SMOKE: list[tuple[str, str, dict[str, object]]] = [
    ("connect", "connect", {"connections": 5, "hold_s": 0.1}),
    ("direct", "direct", {"pairs": 2, "window": 4, "duration_s": 0.3}),
    ("direct-rate", "direct", {"pairs": 1, "rate": 50.0, "window": 8, "duration_s": 0.3}),
    ("fanout", "fanout", {"members": 4, "senders": 2, "window": 2, "duration_s": 0.3}),
    ("catchup", "catchup", {"messages": 450, "conversations": 2}),
    ("http", "http", {"duration_s": 0.2, "concurrency": 2}),
]


def _coerce(scenario: str, pairs: Sequence[str]) -> dict[str, object]:
    signature = inspect.signature(SCENARIOS[scenario])
    params: dict[str, object] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in signature.parameters or key == "ctx":
            known = ", ".join(p for p in signature.parameters if p != "ctx")
            raise SystemExit(f"bench: {scenario} has no parameter {key!r} (known: {known})")
        default = signature.parameters[key].default
        params[key] = type(default)(raw)
    return params


def _config(pairs: Sequence[str]) -> dict[str, object]:
    config: dict[str, object] = dict(SERVER_CONFIG)
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value: object = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        config[key] = value
    return config


async def run_one(
    target: Target,
    scenario: str,
    params: Mapping[str, object],
    *,
    pin: bool = True,
    cluster: Sequence[Target] = (),
    probe: Callable[[], AbstractAsyncContextManager[list[float]]] | None = None,
) -> Result:
    """Run one scenario against ``target`` (and the rest of its ``cluster``, if given)."""
    async with httpx.AsyncClient(base_url=target.http_url, timeout=60) as http:
        context = Context(target, http, pin=pin, cluster=list(cluster), probe=probe)
        return await SCENARIOS[scenario](context, **params)


async def run_set(
    runs: Sequence[tuple[str, str, Mapping[str, object]]],
    out: Path,
    *,
    config: Mapping[str, object],
    target: Target | None = None,
    pin: bool = True,
    plots: bool = True,
) -> list[Path]:
    """Each run against a fresh server (or ``target``); the JSON files written."""
    written = []
    for label, scenario, params in runs:
        print(f"bench: {label} ({scenario} {dict(params)})", file=sys.stderr, flush=True)
        if target is not None:
            result = await run_one(target, scenario, params, pin=False)
        else:
            with tempfile.TemporaryDirectory(prefix="sandcat-bench-") as data:
                async with spawn(Path(data), config) as spawned:
                    result = await run_one(spawned, scenario, params, pin=pin)
        result.params["label"] = label
        path = result.write(out, plots=plots)
        print(json.dumps(result.document()["numbers"], indent=1), file=sys.stderr, flush=True)
        written.append(path)
    return written


def _target(spec: str) -> Target:
    host, ws_port, http_port = spec.rsplit(":", 2)
    return Target(host, int(ws_port), int(http_port))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one scenario")
    run.add_argument("scenario", choices=sorted(SCENARIOS))
    run.add_argument("-p", "--param", action="append", default=[], help="KEY=VALUE")
    standard = commands.add_parser("standard", help="run the standard set (nox -s bench)")
    smoke = commands.add_parser("smoke", help="every scenario with tiny parameters")
    for sub in (run, standard, smoke):
        sub.add_argument("--out", default="bench-results", help="where JSON and PNG go")
        sub.add_argument(
            "-c", "--config", action="append", default=[], help="server setting KEY=VALUE"
        )
        sub.add_argument("--target", help="HOST:WS_PORT:HTTP_PORT of a running server")
        sub.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
        sub.add_argument("--no-plots", action="store_true", help="JSON only")
    diff = commands.add_parser("compare", help="print the ratios B/A of two results")
    diff.add_argument("a", type=Path)
    diff.add_argument("b", type=Path)
    peers = commands.add_parser(
        "peers", help="direct 1:1 runs against ejabberd and Sandcat in one run (issue 14)"
    )
    peers.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    cluster = commands.add_parser(
        "cluster", help="every scenario against 1-4 instances on PostgreSQL, Kafka and Redis"
    )
    cluster.add_argument("--out", default="bench-results", help="where JSON and PNG go")
    cluster.add_argument(
        "-c", "--config", action="append", default=[], help="server setting KEY=VALUE"
    )
    cluster.add_argument("--instances", type=int, default=2, choices=(1, 2, 3, 4))
    cluster.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        help="KEY=VALUE for every run whose scenario has KEY",
    )
    cluster.add_argument(
        "--only", action="append", default=[], help="run only this label (repeatable)"
    )
    cluster.add_argument(
        "--baseline", action="store_true", help="also run direct-max embedded, for comparison"
    )
    cluster.add_argument("--smoke", action="store_true", help="one tiny run")
    cluster.add_argument("--no-plots", action="store_true", help="JSON only")
    return parser


def _overrides(scenario: str, pairs: Sequence[str]) -> dict[str, object]:
    """The ``-p`` pairs ``scenario`` has a parameter for (the others are for other runs)."""
    known = inspect.signature(SCENARIOS[scenario]).parameters
    return _coerce(scenario, [pair for pair in pairs if pair.partition("=")[0] in known])


def _cluster(args: argparse.Namespace) -> int:
    from bench.cluster import BASELINE, CLUSTER, CLUSTER_SMOKE, backends, run_cluster

    chosen = CLUSTER_SMOKE if args.smoke else CLUSTER
    unknown = set(args.only) - {label for label, _, _ in chosen}
    if unknown:
        known = ", ".join(label for label, _, _ in chosen)
        raise SystemExit(f"bench: no cluster run {sorted(unknown)} (known: {known})")
    runs = [
        (label, s, {**p, **_overrides(s, args.param)})
        for label, s, p in chosen
        if not args.only or label in args.only
    ]
    label, scenario, params = BASELINE
    baseline = [(label, scenario, {**params, **_overrides(scenario, args.param)})]
    baseline[0][2].pop("cross", None)
    with backends() as started:
        written = trio.run(
            lambda: run_cluster(
                runs,
                Path(args.out),
                backends=started,
                config=_config(args.config),
                instances=args.instances,
                plots=not args.no_plots,
                baseline=baseline if args.baseline else (),
            )
        )
    for path in written:
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compare":
        a, b = load([args.a, args.b])
        print("\n".join(compare(a, b)))
        return 0
    if args.command == "cluster":
        return _cluster(args)
    if args.command == "peers":
        from bench.peers import main as peers

        return peers(args.duration)
    if args.command == "run":
        runs = [(args.scenario, args.scenario, _coerce(args.scenario, args.param))]
    else:
        runs = [
            (label, s, dict(p))
            for label, s, p in (STANDARD if args.command == "standard" else SMOKE)
        ]
    target = _target(args.target) if args.target else None
    written = trio.run(
        lambda: run_set(
            runs,
            Path(args.out),
            config=_config(args.config),
            target=target,
            pin=not args.no_pin,
            plots=not args.no_plots,
        )
    )
    for path in written:
        print(path)
    return 0
