"""``python -m tests.chaos.soak``: the soak run (``nox -s soak``; not in CI).

Three instances behind fault proxies; the chaos cast sends at ``--rate``
messages/s in all; ``--connections`` idle devices (users of their own, in no
busy conversation) stay connected across the instances and ``--churn`` of them
are closed and reconnected every minute; F15's seeded fault schedule runs the
whole time. Every 10 s the RSS of each instance is sampled; every minute a line
of numbers (sends, acks, p99 ack latency that minute, RSS, idle connections
up) is appended to ``OUT/minutes.jsonl``, so a run cut short still leaves its
numbers. At the end the load stops, the devices converge, the checker judges
the whole history, and ``OUT/summary.json`` and ``OUT/rss.png`` are written.
It stops by itself: the whole run is bounded by ``--minutes`` plus the
quiesce and check.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import httpx
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    connect_websocket_url,
)

from sandcat.client import Credentials
from sandcat.client.http import Tokens
from sandcat.protocol import Auth, Err, ErrorCode, Hello, Ok, decode_server, encode
from tests.chaos import faults, workload
from tests.chaos.cluster import Cluster, running_cluster
from tests.chaos.device import CALL_TIMEOUT_S
from tests.chaos.faults import _rss_kib, p99
from tests.chaos.tokens import TokenSource, TokenUnavailable
from tests.chaos.workload import PASSWORD, Cast, Numbers, make_cast, run_scenario

SOAK_TOML = """
[gateway]
max_connections_per_user = 2000
"""
IDLE_DEVICES_PER_USER = 50
#: How long past ``--minutes`` the quiesce, convergence and check may take before
#: the run is stopped (and still writes its summary).
HARD_LIMIT_EXTRA_S = 900


def _register_idle(cluster: Cluster, connections: int) -> list[tuple[str, str, Tokens]]:
    """Users with ``IDLE_DEVICES_PER_USER`` devices each; (login, device, tokens) of each."""
    logins: list[tuple[str, str, Tokens]] = []
    users = -(-connections // IDLE_DEVICES_PER_USER)
    with httpx.Client(base_url=cluster.instances[0].http_url, timeout=30) as http:
        for u in range(users):
            name = f"idle{u}"
            reply = http.post(
                "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
            )
            assert reply.status_code == 201, reply.text
            for d in range(IDLE_DEVICES_PER_USER):
                if len(logins) == connections:
                    break
                reply = http.post(
                    "/api/v1/auth/login",
                    json={"login": name, "password": PASSWORD, "device": f"x{d}", "platform": "t"},
                )
                assert reply.status_code == 200, reply.text
                logins.append((name, f"x{d}", Tokens.from_json(reply.json())))
    return logins


class Idle:
    """One idle device: stays connected (reconnecting when dropped) until churned.

    Like the SDK, it renews its access token before it expires (AUTH on the live
    link) and after a HELLO refused ``unauthorized`` (protocol/SPEC.md §5.3, §6)."""

    def __init__(self, n: int, credentials: Credentials, urls: list[str]) -> None:
        self.n, self.credentials, self.urls = n, credentials, urls
        self.up = False
        self.scope = trio.CancelScope()
        self.connects = 0
        self.auths = 0
        self.refused = 0
        self._renew = False
        self._rids = itertools.count(2)

    async def run(self) -> None:
        while True:
            self.scope = trio.CancelScope()
            with self.scope:
                try:
                    await self._session(self.urls[(self.n + self.connects) % len(self.urls)])
                except* (
                    OSError,
                    HandshakeError,
                    ConnectionClosed,
                    trio.TooSlowError,
                    TokenUnavailable,
                ):
                    pass
            self.up = False
            await trio.sleep(random.uniform(0.2, 2.0))

    async def _token(self) -> str:
        with trio.fail_after(CALL_TIMEOUT_S * 6):
            token = await self.credentials.access_token(renew=self._renew)
        self._renew = False
        return token

    async def _session(self, url: str) -> None:
        async with trio.open_nursery() as nursery:
            token = await self._token()
            with trio.fail_after(CALL_TIMEOUT_S * 2):
                ws = await connect_websocket_url(nursery, url, subprotocols=["sandcat.v1"])
                await ws.send_message(
                    encode(Hello(rid=1, token=token, device=f"x{self.n}", platform="t"))
                )
                reply = decode_server(bytes(await ws.get_message()))  # type: ignore[arg-type]
            try:
                if not isinstance(reply, Ok):
                    if isinstance(reply, Err) and reply.code == ErrorCode.UNAUTHORIZED:
                        self.refused += 1
                        self._renew = True  # the next attempt renews the token first
                    return
                self.connects += 1
                self.up = True
                nursery.start_soon(self._keep_authenticated, ws)
                while True:
                    # Pushes (none expected) and AUTH answers; pongs are automatic.
                    frame = decode_server(bytes(await ws.get_message()))  # type: ignore[arg-type]
                    if isinstance(frame, Ok):
                        self.auths += 1
            finally:
                self.up = False
                with trio.move_on_after(1) as cleanup:
                    cleanup.shield = True
                    await ws.aclose()
                nursery.cancel_scope.cancel()

    async def _keep_authenticated(self, ws: WebSocketConnection) -> None:
        """AUTH with a fresh token a while before the current one expires."""
        while (renew_at := self.credentials.renew_at) is not None:
            await trio.sleep(max(2.0, renew_at - time.time()))
            try:
                token = await self._token()
            except (TokenUnavailable, trio.TooSlowError):
                continue  # try again shortly; past the grace the server closes (4007)
            with trio.fail_after(CALL_TIMEOUT_S):
                await ws.send_message(encode(Auth(rid=next(self._rids), token=token)))


async def _soak(args: argparse.Namespace, cluster: Cluster, cast: Cast, out: Path) -> Numbers:
    logins = await trio.to_thread.run_sync(_register_idle, cluster, args.connections)
    urls = [i.ws_url for i in cluster.instances]
    minutes = out / "minutes.jsonl"
    rss: list[dict[str, object]] = []
    schedule: list[str] = []
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"soak: seed {seed}, {len(logins)} idle devices, {args.rate} msgs/s", flush=True)
    source = TokenSource([i.http_url for i in cluster.instances], PASSWORD)
    idle = [
        Idle(n, source.credentials(login, device, tokens), urls)
        for n, (login, device, tokens) in enumerate(logins)
    ]
    for d in cast.devices:
        assert d.tokens is not None
        d.credentials = source.credentials(d.login, d.name, d.tokens)

    async def body(numbers: Numbers) -> None:
        begun = time.monotonic()
        async with trio.open_nursery() as nursery:
            for device in idle:
                nursery.start_soon(device.run)
            f15 = faults.f15_schedule(cluster, seed, args.minutes * 60, schedule)
            f15_done = trio.Event()

            async def run_f15() -> None:
                try:
                    await f15(Numbers("f15"))
                finally:
                    f15_done.set()

            nursery.start_soon(run_f15)
            rng = random.Random(seed)
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
                    line = {
                        "minute": minute,
                        "attempts": len(ops),
                        "new_attempts": len(ops) - sent,
                        "acked_this_minute": len(lat),
                        "p99_ack_s": round(p99(lat), 3),
                        "idle_up": sum(d.up for d in idle),
                        "rss_mib": sample["rss_mib"],
                        "pids": pids,
                        "faults_so_far": len(schedule),
                        "refreshes": source.refreshes,
                        "relogins": source.logins,
                        "token_failures": source.failures,
                        "auths": sum(d.auths for d in idle) + sum(d.auths for d in cast.devices),
                        "hello_refused": sum(d.refused for d in idle),
                        "load": [round(x, 2) for x in os.getloadavg()],
                    }
                    sent = len(ops)
                    with minutes.open("a") as file:
                        file.write(json.dumps(line) + "\n")
                    print(f"soak {line}", flush=True)
                    # Churn: close this share of the idle devices; they reconnect.
                    for device in rng.sample(idle, int(len(idle) * args.churn)):
                        device.scope.cancel()
            # F15 ends by itself; cancelling it mid-fault could leave a backend down.
            with trio.move_on_after(120):
                await f15_done.wait()
            nursery.cancel_scope.cancel()
        for n, instance in enumerate(cluster.instances):
            if not instance.running:
                await faults._restart(cluster, n)
        numbers.extra.update(seed=seed, faults=len(schedule), schedule=schedule)

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
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # cluster_toml ends inside [auth]: the key goes there, then the soak's tables.
    extra = f"access_ttl_s = {args.access_ttl}\n{SOAK_TOML}"
    with running_cluster(3, proxied=True, extra_toml=extra) as cluster:
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
