"""The ``sandcat`` command (operations contract: README.md, "Configuration")."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import resource
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import trio

from sandcat import __version__
from sandcat.admin_cli import add_admin_parser, run_admin
from sandcat.allocator import limit_arenas
from sandcat.config import Config, load_config
from sandcat.domain.keyring import Rotation
from sandcat.errors import ConfigError, Conflict, StoreUnavailable, Unavailable
from sandcat.extras import check_extras
from sandcat.logs import announcement, configure_logging
from sandcat.startup import StartupGaveUp, start_with_retry

if TYPE_CHECKING:
    from sandcat.domain.passwords import PasswordHasher

log = logging.getLogger("sandcat")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandcat", description="Sandcat IM server")
    parser.add_argument("--version", action="version", version=f"sandcat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one instance")
    serve.add_argument("--config", help="TOML configuration file")
    serve.add_argument("--data-dir", help="where embedded data lives (default ./sandcat-data)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--ws-port", type=int, help="WebSocket port (default 50000)")
    serve.add_argument("--http-port", type=int, help="HTTP port (default 50001)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or JSON (default text)"
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes on this host sharing the backends (needs PostgreSQL; default 1)",
    )
    serve.add_argument(
        "--role",
        choices=["all", "gateway", "api", "worker"],
        help="what this instance runs (docs/roles.md; needs PostgreSQL unless all; default all)",
    )
    # Set by the --workers supervisor for its children: inherited listening sockets.
    serve.add_argument("--listen-fds", type=_fd_pair, help=argparse.SUPPRESS)
    migrate = commands.add_parser(
        "migrate", help="apply pending database schema migrations, then exit"
    )
    migrate.add_argument("--config", help="TOML configuration file")
    migrate.add_argument("--data-dir", help="where embedded data lives (default ./sandcat-data)")
    migrate.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    rotate = commands.add_parser(
        "rotate-token-key",
        help="make a new access-token signing key; the old one stays accepted for one "
        "access-token lifetime",
    )
    rotate.add_argument("--config", help="TOML configuration file")
    rotate.add_argument("--data-dir", help="where embedded data lives (default ./sandcat-data)")
    rotate.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    add_admin_parser(commands, _common_options)
    for name, text, where in (
        ("backup", "snapshot the SQLite database (online) and copy the local blobs", "dest"),
        ("restore", "put a backup into an empty data directory", "source"),
        ("check", "verify a deployment: schema, seqs per conversation, blobs", None),
    ):
        command = commands.add_parser(name, help=text)
        if where is not None:
            command.add_argument(where, help="the backup folder")
        command.add_argument("--config", help="TOML configuration file")
        command.add_argument("--data-dir", help="the data directory (default ./sandcat-data)")
        command.add_argument(
            "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
        )
    return parser


def _common_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", help="TOML configuration file")
    command.add_argument("--data-dir", help="the data directory (default ./sandcat-data)")
    command.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError("must be between 1 and 1024")
    return value


def _fd_pair(text: str) -> tuple[int, int]:
    ws, _, http = text.partition(",")
    return int(ws), int(http)


def _config(args: argparse.Namespace, env: dict[str, str]) -> Config:
    flags = {
        "server.data_dir": args.data_dir,
        "server.host": getattr(args, "host", None),
        "server.ws_port": getattr(args, "ws_port", None),
        "server.http_port": getattr(args, "http_port", None),
        "log.format": getattr(args, "log_format", None),
        "server.role": getattr(args, "role", None),
    }
    return load_config(
        file=args.config,
        env=env,
        overrides={key: value for key, value in flags.items() if value is not None},
    )


def main(argv: Sequence[str] | None = None, *, passwords: PasswordHasher | None = None) -> int:
    """Run the ``sandcat`` command. ``passwords`` replaces the configured password
    hasher of a single-process ``serve`` (a test entry point's cheaper cost)."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, "text")
    try:
        config = _config(args, dict(os.environ))
        check_extras(config)
        if args.command == "serve":
            from sandcat.roles import duties

            duties(config)  # a split role on SQLite: refused before anything starts
    except ConfigError as exc:
        print(f"sandcat: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, config.log.format)
    if args.command == "migrate":
        return _migrate(config)
    if args.command == "rotate-token-key":
        return _rotate_token_key(config)
    if args.command in ("backup", "restore", "check"):
        return _backup_command(args, config)
    if args.command == "admin":
        return run_admin(args, config, passwords=passwords)
    if args.workers > 1:
        from sandcat.supervisor import run_workers

        try:
            return run_workers(config, args.workers, _worker_argv(argv))
        except ConfigError as exc:
            print(f"sandcat: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"sandcat: cannot start: {exc}", file=sys.stderr)
            return 1
    from sandcat.app import run_server

    _raise_open_files_limit()
    limit_arenas(config.server.malloc_arena_max)  # before any thread starts
    started = False

    async def serve() -> None:
        nonlocal started
        async with trio.open_nursery() as nursery:
            server = await start_with_retry(
                nursery,
                lambda task_status: run_server(
                    config,
                    handle_signals=True,
                    listen_fds=args.listen_fds,
                    passwords=passwords,
                    task_status=task_status,
                ),
                timeout_s=config.server.startup_timeout_s,
            )
            started = True
            _freeze_startup_objects()
            host = config.server.host
            if ":" in host:
                host = f"[{host}]"  # an IPv6 address in a URL (RFC 3986)
            secure = "s" if config.server.tls_cert_file else ""
            ws = f"ws{secure}://{host}:{server.ws_port}/ws and " if server.ws_port else ""
            role = "" if server.role == "all" else f" (role {server.role})"
            print(
                announcement(
                    f"sandcat {__version__}{role} listening on {ws}"
                    f"http{secure}://{host}:{server.http_port} "
                    f"(data: {config.data_path.resolve()})",
                    config.log.format,
                ),
                flush=True,
            )

    try:
        trio.run(serve)
    except (ConfigError, Unavailable, StartupGaveUp, OSError, BaseExceptionGroup) as exc:
        # Startup errors reach here wrapped in the nursery's exception group.
        failure = _startup_failure(exc, started=started)
        if failure is None:
            raise
        if isinstance(failure, ConfigError):
            print(f"sandcat: {failure}", file=sys.stderr)
            return 2
        if isinstance(failure, StartupGaveUp):
            kind = "storage" if isinstance(failure.failure, StoreUnavailable) else "backend"
            print(f"sandcat: {kind} unavailable: {failure}", file=sys.stderr)
        elif isinstance(failure, StoreUnavailable):
            print(f"sandcat: storage unavailable: {failure}", file=sys.stderr)
        elif isinstance(failure, Unavailable):  # Redis or Kafka at startup
            print(f"sandcat: backend unavailable: {failure}", file=sys.stderr)
        else:
            print(f"sandcat: cannot start: {failure}", file=sys.stderr)
        return 1
    return 0


def _backup_command(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from sandcat.backup import BackupError, backup, check, restore

    try:
        if args.command == "backup":
            snap = backup(config, Path(args.dest))
            print(
                f"backed up schema {snap.schema_version}, {snap.messages} messages and "
                f"{snap.blobs} blobs to {snap.path}"
            )
            return 0
        if args.command == "restore":
            print(f"restored {restore(config, Path(args.source))}; run sandcat check")
            return 0
        report = check(config)
    except ConfigError as exc:
        print(f"sandcat: {exc}", file=sys.stderr)
        return 2
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"sandcat {args.command}: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"sandcat {args.command}: storage unavailable: {exc}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(f"problem: {problem}")
    print(
        f"{'ok' if report.ok else 'FAILED'}: schema {report.schema_version}, "
        f"{report.conversations} conversations, {report.messages} messages, "
        f"{report.files} files, {len(report.problems)} problems"
    )
    return 0 if report.ok else 1


def _worker_argv(argv: Sequence[str] | None) -> list[str]:
    """This command line without ``--workers N`` (what each worker runs)."""
    args = list(sys.argv[1:] if argv is None else argv)
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return kept


def _migrate(config: Config) -> int:
    from sandcat.store.backends import migrate_database

    try:
        print(f"sandcat: {trio.run(migrate_database, config)}", flush=True)
    except ConfigError as exc:
        print(f"sandcat: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"sandcat: storage unavailable: {exc}", file=sys.stderr)
        return 1
    return 0


def _rotate_token_key(config: Config) -> int:
    if config.auth.token_secret:
        print(
            "sandcat: auth.token_secret is set, so the key is not in the database: "
            "rotate it by changing the secret on every instance",
            file=sys.stderr,
        )
        return 2
    try:
        rotation = trio.run(_rotate, config)
    except ConfigError as exc:
        print(f"sandcat: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"sandcat: storage unavailable: {exc}", file=sys.stderr)
        return 1
    except Conflict as exc:
        print(f"sandcat: {exc}; try again", file=sys.stderr)
        return 1
    print(
        f"sandcat: token key {rotation.new.id} signs from {_utc(rotation.new.active_at_ms)} "
        f"(once every instance has read it); key {rotation.old.id} is accepted until "
        f"{_utc(rotation.old_accepted_until_ms)}; {rotation.kept} keys kept",
        flush=True,
    )
    return 0


async def _rotate(config: Config) -> Rotation:
    from sandcat.clock import system_clock
    from sandcat.domain.keyring import open_key_ring, rotate
    from sandcat.store.backends import open_token_keys

    async with open_token_keys(config) as store:
        # A first key (or the one an older version left in token.key) before the next.
        await open_key_ring(
            "",
            store,
            legacy_file=config.data_path / "token.key",
            access_ttl_s=config.auth.access_ttl_s,
            clock=system_clock,
        )
        return await rotate(
            store,
            access_ttl_s=config.auth.access_ttl_s,
            refresh_s=config.auth.key_refresh_s,
            clock=system_clock,
        )


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _freeze_startup_objects() -> None:
    """Keep what startup allocated (modules, config, routes) out of every later full
    collection: measured in the bench, full collections walking those objects paused
    the server for 15-100 ms, the tail of send latency."""
    gc.collect()
    gc.freeze()
    log.info("%d startup objects moved out of the garbage collector's way", gc.get_freeze_count())


#: The soft limit to ask for when the hard limit is unlimited.
_OPEN_FILES_WANTED = 1 << 20


def _raise_open_files_limit() -> None:
    """Every connection is a file descriptor: raise the soft limit to the hard one (logged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning(
                "open files limit stays at %d (raising it to %d failed: %s)", soft, wanted, exc
            )
            return
        log.info("open files limit raised from %d to %d (the hard limit)", soft, wanted)
    else:
        log.info("open files limit: %d", soft)


def _startup_failure(exc: BaseException, *, started: bool) -> Exception | None:
    """The one error an operator can act on that ``exc`` consists of, else None.

    Bad configuration and unavailable storage, and before the server is up also
    an OS error (port in use, data directory not writable): a message, not a
    traceback. Anything else, or anything after startup, is a crash to report.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, ConfigError | Unavailable | StartupGaveUp):
        return exc
    if isinstance(exc, OSError) and not started:
        return exc
    return None
