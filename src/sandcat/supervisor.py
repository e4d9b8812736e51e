"""``sandcat serve --workers N``: N worker processes on one host sharing the backends.

The supervisor binds the WebSocket and HTTP ports once and starts N
``sandcat serve`` children that inherit both listening sockets and accept
from them (the kernel hands each new connection to one of them), so one box
uses all its cores behind one address. Workers share state only through the
backends, so PostgreSQL is required (SQLite is one process's file); without
Kafka and Redis each worker would push only to its own clients, so the
supervisor warns. SIGTERM or SIGINT is forwarded to every worker, each drains
as a single instance would, and the supervisor exits 0 once all exited 0. A
worker that dies on its own stops the others: the supervisor exits 1 and
leaves restarting to the service manager.

With ``--role`` (docs/roles.md) every worker runs that role: N gateways
sharing the WebSocket port (and the HTTP port of their /healthz and
/metrics), N api processes sharing the HTTP port, or N workers sharing the
HTTP port, whose cluster singletons each run in one of them (leases). A role
without WebSockets gets no WebSocket socket (``--listen-fds=-1,HTTP``).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

import trio

from sandcat import __version__
from sandcat.config import Config
from sandcat.domain.keyring import check_configured
from sandcat.errors import ConfigError, ListenError
from sandcat.private_files import make_private_dir
from sandcat.roles import duties
from sandcat.store.backends import is_postgres

log = logging.getLogger(__name__)

#: Pending connections per listening socket (shared by the workers).
_BACKLOG = 1024
#: How long a worker gets to drain after SIGTERM before it is killed.
_KILL_AFTER_GRACE_S = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket the workers inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _bind(host: str, port: int, setting: str) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        raise ListenError(host, port, setting, exc) from exc


def check(config: Config, workers: int) -> None:
    """Refuse what N processes cannot share; ``ConfigError`` names the setting."""
    role = duties(config)
    if workers > 1 and not is_postgres(config):
        raise ConfigError(
            "backends.database_url",
            config.backends.database_url or "(embedded SQLite)",
            "--workers needs PostgreSQL: SQLite is one process's file",
        )
    if not role.gateway:
        return  # an api or worker process holds no client connections
    if workers > 1 and not config.backends.kafka_bootstrap:
        log.warning("--workers without Kafka: each worker pushes messages only to its own clients")
    if workers > 1 and not config.backends.redis_url:
        log.warning(
            "--workers without Redis: logout and READ_STATE reach only one worker's sockets"
        )


def run_workers(config: Config, workers: int, argv: Sequence[str]) -> int:
    """Start ``workers`` children of ``sandcat serve`` (``argv`` without ``--workers``)."""
    check(config, workers)
    make_private_dir(config.data_path)
    # Without a configured secret the workers agree on the database's key.
    check_configured(config.auth.token_secret)
    ws = None
    if duties(config).gateway:
        ws = _bind(config.server.host, config.server.ws_port, "server.ws_port")
    try:
        http = _bind(config.server.host, config.server.http_port, "server.http_port")
    except OSError:
        if ws is not None:
            ws.close()
        raise
    try:
        return trio.run(_supervise, config, workers, argv, ws, http)
    finally:
        if ws is not None:
            ws.close()
        http.close()


async def _supervise(
    config: Config,
    workers: int,
    argv: Sequence[str],
    ws: socket.socket | None,
    http: socket.socket,
) -> int:
    inherited = (http.fileno(),) if ws is None else (ws.fileno(), http.fileno())
    command = [
        sys.executable,
        "-m",
        "sandcat",
        *argv,
        # One argument: "-1,N" would read as an option.
        f"--listen-fds={-1 if ws is None else ws.fileno()},{http.fileno()}",
    ]
    failed = False
    stopping = False
    children: list[trio.Process] = []
    async with trio.open_nursery() as nursery:

        async def kill_stragglers() -> None:
            await trio.sleep(_KILL_AFTER_GRACE_S)
            for child in children:
                if child.returncode is None:
                    log.error("worker %d did not stop in time; killing it", child.pid)
                    child.kill()

        def stop_all() -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            for child in children:
                if child.returncode is None:
                    child.send_signal(signal.SIGTERM)
            nursery.start_soon(kill_stragglers)

        async def watch(child: trio.Process) -> None:
            nonlocal failed
            code = await child.wait()
            if code != 0 or not stopping:
                log.error("worker %d exited with %s; stopping the others", child.pid, code)
                failed = True
                stop_all()

        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as workers_nursery:
                for _ in range(workers):
                    child = await trio.lowlevel.open_process(
                        command, pass_fds=inherited, stdin=subprocess.DEVNULL
                    )
                    children.append(child)
                    workers_nursery.start_soon(watch, child)
                host = config.server.host
                if ":" in host:
                    host = f"[{host}]"
                role = "" if config.server.role == "all" else f" of role {config.server.role}"
                listens = "" if ws is None else f"ws://{host}:{ws.getsockname()[1]}/ws and "
                print(
                    f"sandcat {__version__} supervising {workers} workers{role} "
                    f"(pids {' '.join(str(c.pid) for c in children)}) on "
                    f"{listens}http://{host}:{http.getsockname()[1]}",
                    flush=True,
                )

                async def forward() -> None:
                    async for signum in signals:
                        log.info("received %s; stopping the workers", signal.Signals(signum).name)
                        stop_all()

                nursery.start_soon(forward)
            nursery.cancel_scope.cancel()  # every worker has exited
    return 1 if failed else 0
