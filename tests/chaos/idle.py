"""The soak's idle devices, in a process of their own (``python -m tests.chaos.idle``).

The soak's main process runs the chaos cast, the checker's bookkeeping and the
fault proxies that carry every instance's PostgreSQL and Redis traffic; 2,000
idle WebSockets (pings, reconnects, token renewals) in the same process would
take the interpreter from the proxies, and every backend call would look slow.
So the soak registers the idle users, writes their logins to a file, and runs
this module, which keeps every device connected (reconnecting when dropped),
closes ``--churn`` of them a minute, renews their tokens like the SDK, writes
its numbers to ``--status`` every few seconds, and stops by itself after
``--seconds`` (or at SIGTERM).
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
from tests.chaos.cluster import Cluster
from tests.chaos.device import CALL_TIMEOUT_S
from tests.chaos.tokens import TokenSource, TokenUnavailable
from tests.chaos.workload import PASSWORD

IDLE_DEVICES_PER_USER = 50
#: Reconnect backoff (full jitter) of a dropped idle device, in seconds.
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


def register(cluster: Cluster, connections: int) -> list[tuple[str, str, Tokens]]:
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
        self.backoff = BACKOFF_MIN_S
        self.up_once = False
        self.attempts = 0

    async def run(self) -> None:
        while True:
            self.scope = trio.CancelScope()
            with self.scope:
                try:
                    # The next instance on every attempt: one that is down is not retried
                    # forever (a failed attempt used to keep the device on it).
                    self.attempts += 1
                    await self._session(self.urls[(self.n + self.attempts) % len(self.urls)])
                except* (
                    OSError,
                    HandshakeError,
                    ConnectionClosed,
                    trio.TooSlowError,
                    TokenUnavailable,
                ):
                    pass
            if self.up_once:
                self.backoff = BACKOFF_MIN_S  # it was connected: start over
            self.up = self.up_once = False
            # Full-jitter exponential backoff, as a client should (a reconnect storm
            # of every device at once would be a fault of its own).
            await trio.sleep(random.uniform(0, self.backoff))
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)

    async def _token(self) -> str:
        # No deadline here: the request is bounded by httpx's timeouts (tokens.py).
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
                self.up = self.up_once = True
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


async def _run(args: argparse.Namespace) -> None:
    logins = json.loads(args.logins.read_text())
    ws_urls: list[str] = logins["ws_urls"]
    begun = time.monotonic()
    async with TokenSource(logins["http_urls"], PASSWORD) as source:
        idle = [
            Idle(n, source.credentials(login, device, Tokens(**tokens)), ws_urls)
            for n, (login, device, tokens) in enumerate(logins["devices"])
        ]

        def write_status() -> None:
            status = {
                "t_s": round(time.monotonic() - begun),
                "devices": len(idle),
                "up": sum(d.up for d in idle),
                "connects": sum(d.connects for d in idle),
                "auths": sum(d.auths for d in idle),
                "hello_refused": sum(d.refused for d in idle),
                "refreshes": source.refreshes,
                "relogins": source.logins,
                "token_failures": source.failures,
            }
            part = args.status.with_suffix(".part")
            part.write_text(json.dumps(status))
            part.replace(args.status)

        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signal)
            for device in idle:
                nursery.start_soon(device.run)
            rng = random.Random(args.seed)
            churned_at = time.monotonic()
            with trio.move_on_after(args.seconds):
                while True:
                    await trio.sleep(5)
                    write_status()
                    if time.monotonic() - churned_at >= 60:
                        churned_at += 60
                        # Close this share of the devices; they reconnect.
                        for device in rng.sample(idle, int(len(idle) * args.churn)):
                            device.scope.cancel()
            nursery.cancel_scope.cancel()
        write_status()


def write_logins(path: Path, cluster: Cluster, logins: list[tuple[str, str, Tokens]]) -> None:
    """The file ``python -m tests.chaos.idle`` reads (it holds tokens: keep it private)."""
    data = {
        "http_urls": [i.http_url for i in cluster.instances],
        "ws_urls": [i.ws_url for i in cluster.instances],
        "devices": [
            (
                login,
                device,
                {
                    "access_token": t.access_token,
                    "refresh_token": t.refresh_token,
                    "expires_at": t.expires_at,
                },
            )
            for login, device, t in logins
        ],
    }
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.idle")
    parser.add_argument("logins", type=Path)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--churn", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    trio.run(_run, parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
