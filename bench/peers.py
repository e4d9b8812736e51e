"""``python -m bench peers``: the 1:1 path against ejabberd, in one run (issue 14).

Installs ejabberd from Debian's package if it is missing (``apt-get``, the
package's service kept from starting), starts it on loopback with a
configuration written here (mnesia, no archive, no shapers, BEAM scheduler
busy-wait off: ``+sbwt none``), registers the users in-band and drives it
with the same load as ``direct``: one load generator over WebSocket (XMPP
over WebSocket, RFC 7395, text frames), server pinned to CPU 0 and generator
to CPU 1, P sender -> receiver pairs with a window of W messages the server
has not acknowledged. ejabberd's acknowledgement is XEP-0198's ``<a h=N/>``
(handled, kept nowhere); Sandcat's is its OK after the FULL-sync commit.
Then the same two runs against a fresh Sandcat, and a table with the ratios.

Needs root (apt-get, setpriv) and the ``ejabberd`` user the package makes.
Minutes, not seconds: ``nox -s peers``, never in CI.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from bench.server import pin, unpin
from bench.wire import Link, LinkClosed, frame_header

#: (label, pairs, window, total msgs/s or 0 for as fast as the window allows)
RUNS: list[tuple[str, int, int, float]] = [
    ("1:1 max rate, 50 pairs, window 10", 50, 10, 0.0),
    ("1:1 at 100 msgs/s, 50 pairs x 2/s", 50, 10, 100.0),
]
_DOMAIN = "localhost"
_PASSWORD = "bench-password-1"  # noqa: S105 - throwaway accounts on a loopback server
_IDLE_S = 3.0
_DRAIN_S = 10.0
_START_TIMEOUT_S = 90.0

_CONFIG = """\
hosts: ["{domain}"]
loglevel: warning
hide_sensitive_log_data: true
certfiles: []
listen:
  - port: {c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    shaper: none
    max_stanza_size: 1048576
    backlog: 1024
  - port: {http}
    ip: "127.0.0.1"
    module: ejabberd_http
    backlog: 1024
    request_handlers:
      /ws: ejabberd_http_ws
auth_method: internal
default_db: mnesia
registration_timeout: infinity
shaper: {{}}
shaper_rules: {{}}
acl:
  loopback:
    ip: ["127.0.0.0/8"]
access_rules:
  local:
    allow: all
  c2s:
    allow: all
  register:
    allow: all
modules:
  mod_register:
    ip_access: all
    access: register
  mod_stream_mgmt: {{}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_ejabberd() -> None:
    """apt-get install ejabberd if it is not there, without starting its service."""
    if shutil.which("ejabberdctl"):
        return
    policy = Path("/usr/sbin/policy-rc.d")
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "ejabberd"], check=True, env=env
    )


@dataclass
class Ejabberd:
    """A running ejabberd: its WebSocket port and the BEAM process to meter."""

    http_port: int
    beam_pid: int

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.beam_pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _beam_of(root: int) -> int:
    """The beam.smp process below ``root`` (ejabberdctl -> erl -> beam.smp)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        children: dict[int, list[int]] = {}
        names: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    text = stat.read()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            parent = int(text.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry))
            names[int(entry)] = name
        todo = [root]
        while todo:
            pid = todo.pop()
            if names.get(pid, "").startswith("beam"):
                return pid
            todo += children.get(pid, [])
        time.sleep(0.2)
    raise RuntimeError("ejabberd's beam.smp did not start")


def _epmd_running() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4369), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def ejabberd(workdir: Path) -> Iterator[Ejabberd]:
    """Start ejabberd on loopback with its own config, spool and logs; stop it after.

    The Erlang port mapper (epmd) that ejabberdctl starts is stopped too,
    unless one was already running.
    """
    c2s, http = _free_port(), _free_port()
    epmd_before = _epmd_running()
    (workdir / "spool").mkdir()
    (workdir / "log").mkdir()
    (workdir / "ejabberd.yml").write_text(_CONFIG.format(domain=_DOMAIN, c2s=c2s, http=http))
    node = f"sandcatbench{os.getpid()}@localhost"
    (workdir / "ejabberdctl.cfg").write_text(
        f'ERLANG_NODE={node}\nERL_OPTIONS="+sbwt none +sbwtdcpu none +sbwtdio none"\n'
    )
    if Path("/etc/ejabberd/inetrc").exists():
        shutil.copy("/etc/ejabberd/inetrc", workdir / "inetrc")
    shutil.chown(workdir, "ejabberd", "ejabberd")
    for path in workdir.rglob("*"):
        shutil.chown(path, "ejabberd", "ejabberd")
    command = [
        "taskset",
        "-c",
        "0",
        "setpriv",
        "--reuid=ejabberd",
        "--regid=ejabberd",
        "--init-groups",
        "ejabberdctl",
        "--config-dir",
        str(workdir),
        "--config",
        str(workdir / "ejabberd.yml"),
        "--ctl-config",
        str(workdir / "ejabberdctl.cfg"),
        "--spool",
        str(workdir / "spool"),
        "--logs",
        str(workdir / "log"),
        "foreground",
    ]
    log = (workdir / "console.log").open("wb")
    # HOME: the Erlang cookie is made there (root's is not readable by ejabberd).
    env = {**os.environ, "HOME": str(workdir)}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    try:
        beam = _beam_of(process.pid)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", http), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "ejabberd did not listen:\n" + (workdir / "console.log").read_text()
                    ) from None
                time.sleep(0.3)
        yield Ejabberd(http, beam)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(_beam_of(process.pid) if process.poll() is None else beam, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if not epmd_before and shutil.which("epmd"):
            subprocess.run(["epmd", "-kill"], check=False, capture_output=True)


# -- XMPP over WebSocket ----------------------------------------------------------------

_OPEN = f'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="{_DOMAIN}" version="1.0"/>'
_ACK = re.compile(rb"<a [^>]*h=['\"](\d+)['\"]")
_BODY = re.compile(rb"<body>(\d+):(\d+):([0-9.e-]+)</body>")


def _text(stanza: str) -> bytes:
    data = stanza.encode()
    return frame_header(0x1, len(data)) + data


async def _expect(link: Link, marker: bytes) -> bytes:
    """Read stanzas until one holds ``marker``; that stanza."""
    with trio.fail_after(30):
        while True:
            for payload in await link.receive():
                if marker in payload:
                    return payload
                if (
                    b"<failure" in payload
                    or b'type="error"' in payload
                    or b"type='error'" in payload
                ):
                    raise LinkClosed(-1, payload.decode(errors="replace"))


async def xmpp_register(port: int, user: str) -> None:
    """In-band registration (XEP-0077) of ``user``; an existing account is kept."""
    link = await Link.open("127.0.0.1", port, path="/ws", subprotocol="xmpp")
    link.text = True
    try:
        await link.send(_text(_OPEN))
        await _expect(link, b"stream:features")
        await link.send(
            _text(
                "<iq type='set' id='reg' xmlns='jabber:client'><query xmlns='jabber:iq:register'>"
                f"<username>{user}</username><password>{_PASSWORD}</password></query></iq>"
            )
        )
        with contextlib.suppress(LinkClosed):  # a conflict: registered by an earlier run
            await _expect(link, b"id='reg'")
    finally:
        await link.close()


async def xmpp_open(port: int, user: str) -> Link:
    """A bound, available XMPP session for ``user`` with stream management on."""
    link = await Link.open("127.0.0.1", port, path="/ws", subprotocol="xmpp")
    link.text = True
    await link.send(_text(_OPEN))
    await _expect(link, b"PLAIN")
    token = base64.b64encode(f"\0{user}\0{_PASSWORD}".encode()).decode()
    await link.send(
        _text(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    )
    await _expect(link, b"<success")
    await link.send(_text(_OPEN))
    await _expect(link, b"bind")
    await link.send(
        _text(
            "<iq type='set' id='bind' xmlns='jabber:client'>"
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>"
        )
    )
    await _expect(link, b"id='bind'")
    # Presence before stream management, so that <a h=N/> counts messages only.
    await link.send(_text("<presence xmlns='jabber:client'/>"))
    await link.send(_text("<enable xmlns='urn:xmpp:sm:3'/>"))
    await _expect(link, b"<enabled")
    return link


@dataclass
class Tally:
    ack_s: list[float] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    duplicates: int = 0
    seen: set[tuple[int, int]] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0


async def drive_ejabberd(
    port: int, pairs: int, window: int, rate: float, duration_s: float, tally: Tally
) -> None:
    """The ``direct`` load over XMPP: sender i messages receiver i, window ``window``."""
    senders, receivers = [], []
    async with trio.open_nursery() as nursery:
        for i in range(pairs):
            senders.append(await xmpp_open(port, f"s{i}"))
            receivers.append(await xmpp_open(port, f"r{i}"))
        await trio.sleep(0.5)  # presences settle
        tally.first = time.perf_counter()
        stop = tally.first + duration_s

        async def receive(link: Link) -> None:
            while True:
                for payload in await link.receive():
                    for match in _BODY.finditer(payload):
                        key = (int(match.group(1)), int(match.group(2)))
                        if key in tally.seen:
                            tally.duplicates += 1
                        tally.seen.add(key)
                        tally.delivered += 1
                        tally.last = time.perf_counter()

        async def send(number: int, link: Link) -> None:
            credit = trio.Semaphore(window)
            times: list[float] = []
            handled = 0

            async def acks() -> None:
                nonlocal handled
                while True:
                    for payload in await link.receive():
                        for match in _ACK.finditer(payload):
                            h = int(match.group(1))
                            now = time.perf_counter()
                            while handled < h:
                                tally.ack_s.append(now - times[handled])
                                handled += 1
                                tally.acked += 1
                                credit.release()
                            tally.last = now

            async with trio.open_nursery() as inner:
                inner.start_soon(acks)
                n = 0
                period = pairs / rate if rate else 0.0
                next_at = trio.current_time()
                while time.perf_counter() < stop:
                    await credit.acquire()
                    at = time.perf_counter()
                    times.append(at)
                    await link.send(
                        _text(
                            f"<message xmlns='jabber:client' to='r{number}@{_DOMAIN}' "
                            f"type='chat' id='m{n}'><body>{number}:{n}:{at!r}</body></message>"
                        )
                        + _text("<r xmlns='urn:xmpp:sm:3'/>")
                    )
                    tally.sent += 1
                    n += 1
                    if period:
                        next_at += period
                        await trio.sleep_until(next_at)
                with trio.move_on_after(_DRAIN_S):
                    while handled < len(times):  # noqa: ASYNC110 - a bench poll, not a wait
                        await trio.sleep(0.05)
                inner.cancel_scope.cancel()

        for link in receivers:
            nursery.start_soon(receive, link)
        async with trio.open_nursery() as sending:
            for i, link in enumerate(senders):
                sending.start_soon(send, i, link)
        with trio.move_on_after(_DRAIN_S):
            while tally.delivered < tally.acked:  # noqa: ASYNC110 - a bench poll
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    for link in senders + receivers:
        await link.close()


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children (forked workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


@dataclass
class Row:
    server: str
    label: str
    msgs_per_s: float
    p99_ms: float
    cpu_share: float
    idle_share: float
    cpu_us_per_msg: float
    lost: int
    duplicates: int
    #: The load generator's CPU share: figures are valid while it stays under 80%.
    generator_share: float = 0.0


async def run_ejabberd(server: Ejabberd, duration_s: float) -> list[Row]:
    rows = []
    for label, pairs, window, rate in RUNS:
        for i in range(pairs):
            await xmpp_register(server.http_port, f"s{i}")
            await xmpp_register(server.http_port, f"r{i}")
        idle0 = server.cpu_seconds()
        await trio.sleep(_IDLE_S)
        idle = (server.cpu_seconds() - idle0) / _IDLE_S
        tally = Tally()
        pin(0, 1)
        try:
            cpu0, own0 = server.cpu_seconds(), _own_cpu()
            wall0 = time.perf_counter()
            await drive_ejabberd(server.http_port, pairs, window, rate, duration_s, tally)
            cpu = server.cpu_seconds() - cpu0
            wall = time.perf_counter() - wall0
            own = _own_cpu() - own0
        finally:
            unpin(0)
        elapsed = max(tally.last - tally.first, 1e-9)
        rows.append(
            Row(
                "ejabberd",
                label,
                tally.acked / elapsed,
                _p99(tally.ack_s),
                cpu / wall,
                idle,
                cpu / max(tally.acked, 1) * 1e6,
                tally.acked - len(tally.seen),
                tally.duplicates,
                own / wall,
            )
        )
    return rows


async def run_sandcat(duration_s: float) -> list[Row]:
    from bench.cli import SERVER_CONFIG, run_one
    from bench.server import spawn

    rows = []
    for label, pairs, window, rate in RUNS:
        with tempfile.TemporaryDirectory(prefix="sandcat-peers-") as data:
            async with spawn(Path(data), SERVER_CONFIG) as target:
                idle0 = target.cpu_seconds() or 0.0
                await trio.sleep(_IDLE_S)
                idle = ((target.cpu_seconds() or 0.0) - idle0) / _IDLE_S
                own0, wall0 = _own_cpu(), time.perf_counter()
                result = await run_one(
                    target,
                    "direct",
                    {"pairs": pairs, "window": window, "rate": rate, "duration_s": duration_s},
                )
                # Setup (registrations, friendships) is in this figure too: an upper bound.
                generator = (_own_cpu() - own0) / (time.perf_counter() - wall0)
        numbers = result.numbers
        rows.append(
            Row(
                "sandcat",
                label,
                float(numbers["acked_per_s"]),  # type: ignore[arg-type]
                _p99(result.latencies["send_to_ack"]),
                float(numbers.get("server_cpu_share", 0.0)),  # type: ignore[arg-type]
                idle,
                float(numbers.get("server_cpu_us_per_message", 0.0)),  # type: ignore[arg-type]
                int(numbers["lost"]),  # type: ignore[call-overload]
                int(numbers["duplicates"]),  # type: ignore[call-overload]
                generator,
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| run | server | msgs/s | p99 ms | server CPU | idle CPU | CPU µs/msg | lost | dups "
        "| generator CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.server} | {r.msgs_per_s:,.0f} | {r.p99_ms:.1f} | "
            f"{r.cpu_share:.0%} | {r.idle_share:.1%} | {r.cpu_us_per_msg:.0f} | "
            f"{r.lost} | {r.duplicates} | {r.generator_share:.0%} |"
        )
    by = {(r.server, r.label): r for r in rows}
    for label, *_ in RUNS:
        s, e = by.get(("sandcat", label)), by.get(("ejabberd", label))
        if s and e and e.msgs_per_s and e.cpu_us_per_msg:
            lines.append(
                f"\n{label}: Sandcat/ejabberd msgs/s {s.msgs_per_s / e.msgs_per_s:.2f}x, "
                f"CPU per msg {s.cpu_us_per_msg / e.cpu_us_per_msg:.2f}x, "
                f"CPU above idle {(s.cpu_share - s.idle_share):.1%} vs "
                f"{(e.cpu_share - e.idle_share):.1%}"
            )
    return "\n".join(lines)


def main(duration_s: float = 10.0) -> int:
    ensure_ejabberd()
    load = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="sandcat-ejabberd-") as work,
        ejabberd(Path(work)) as server,
    ):
        peer_rows = trio.run(run_ejabberd, server, duration_s)
    rows = peer_rows + trio.run(run_sandcat, duration_s)
    print(
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
