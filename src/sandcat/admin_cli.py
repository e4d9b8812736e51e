"""``sandcat admin …``: server administration from the command line (README.md,
"Operating Sandcat": Admin).

Works against the configured database (the SQLite data directory or the
PostgreSQL URL, from the same config file, environment and flags as ``sandcat
serve``) whether a server runs or not. The actor of every action is
``cli:<os user>`` and its origin ``cli``. Output is text, or one JSON document
with ``--json``. Exit status: 0 done, 1 refused (no such user, a conflict, bad
input, storage unavailable), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from sandcat.config import Config
from sandcat.domain.admin import Actor, Admin, audit_dict, session_dict, stats_dict
from sandcat.domain.census import Connections
from sandcat.domain.passwords import PasswordHasher
from sandcat.errors import BadRequest, ConfigError, SandcatError, StoreUnavailable, Unavailable
from sandcat.store.connections import ConnectionBook
from sandcat.store.inbox import Notice

if TYPE_CHECKING:
    from sandcat.store.backends import Stores

#: Seconds to wait for a running instance's /metrics (connections in ``stats``).
_METRICS_TIMEOUT_S = 2.0

Output = dict[str, Any]

log = logging.getLogger(__name__)

#: A generated id (sandcat.ids.new_id) that starts with ``-``: one in 64 do.
_DASHED_ID = re.compile(r"-[A-Za-z0-9_-]{15}")


class _ActionParser(argparse.ArgumentParser):
    """An admin action's parser: a user, group or session id that starts with ``-``
    is an argument, where argparse would take it for an unknown option."""

    def _parse_optional(self, arg_string: str) -> Any:
        if arg_string not in self._option_string_actions and _DASHED_ID.fullmatch(arg_string):
            return None
        return super()._parse_optional(arg_string)


def add_admin_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``admin`` command group of ``sandcat`` (``common`` adds --config and friends)."""
    admin = commands.add_parser("admin", help="administer users, groups and the server")
    actions = admin.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_ActionParser
    )

    def action(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        common(parser)
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        return parser

    create = action("create-user", "create an account (no rate limit, no email code)")
    create.add_argument("username")
    create.add_argument("--email", help="the account's email address")
    create.add_argument(
        "--email-verified",
        action="store_true",
        help="store --email as verified (otherwise the user adds it with the emailed code)",
    )
    create.add_argument("--display-name")
    _password_options(create)
    password = action("set-password", "set a user's password; every session of theirs ends")
    password.add_argument("user", help="id, username, email or phone")
    _password_options(password)
    for name, text in (
        ("disable", "disable an account: no login, every session and socket ends (4007)"),
        ("enable", "enable a disabled account"),
        ("delete", "delete an account (README.md: what is erased and what stays)"),
        ("sessions", "list a user's live sessions"),
        ("grant-admin", "make a user a server admin (the only way to)"),
        ("revoke-admin", "take the server admin role away"),
    ):
        action(name, text).add_argument("user", help="id, username, email or phone")
    revoke = action("revoke-sessions", "end one session of a user, or all of them")
    revoke.add_argument("user", help="id, username, email or phone")
    revoke.add_argument("--session", help="the session id (default: every session)")
    action("lookup", "find a user by id, username, email or phone").add_argument("query")
    action("dismiss-group", "dismiss a group, as its owner would").add_argument("group")
    stats = action("stats", "users, sessions, connections, messages, files, sends per day")
    stats.add_argument("--days", type=int, default=7, help="days of sends to count (default 7)")
    broadcast = action("broadcast", "a system notice in every user's inbox")
    broadcast.add_argument("text")
    broadcast.add_argument("--level", choices=["info", "warning"], default="info")
    export = action("export", "a user's data as a zip (docs/export.md), written to --out")
    export.add_argument("user", help="id, username, email or phone")
    export.add_argument("--out", required=True, help="the zip file to write (must not exist)")
    audit = action("audit", "the audit log of admin actions, newest first")
    audit.add_argument("--actor", help="a user id, or cli:<os user>")
    audit.add_argument("--action", dest="what", help="e.g. disable, create-user")
    audit.add_argument("--since", help="ISO 8601 time (UTC unless it says) or epoch ms")
    audit.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else it is asked for)",
    )


def run_admin(
    args: argparse.Namespace, config: Config, *, passwords: PasswordHasher | None = None
) -> int:
    """Run one ``sandcat admin`` action; the exit status. ``passwords`` replaces the
    configured hasher (the test suite's cheaper one)."""
    try:
        missing = _missing_database(config)
        if missing is not None and args.action != "create-user":
            # A mistyped --data-dir must not look like a server with no users.
            print(f"sandcat admin: no database at {missing} (check --data-dir)", file=sys.stderr)
            return 1
        request = _request(args)
        output = trio.run(_run, config, request, passwords)
    except ConfigError as exc:
        print(f"sandcat: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"sandcat admin: storage unavailable: {exc.message}", file=sys.stderr)
        return 1
    except SandcatError as exc:
        print(f"sandcat admin {args.action}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:  # export: --out cannot be written
        print(f"sandcat admin {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(output, indent=2, sort_keys=True))
    else:
        print(_text(args.action, output))
    return 0


def _missing_database(config: Config) -> str | None:
    """The embedded database's path if it does not exist yet (None: it does, or PostgreSQL)."""
    from sandcat.store.backends import is_postgres, sqlite_path

    if is_postgres(config):
        return None
    path = sqlite_path(config)
    return None if path.exists() else str(path)


Request = Callable[[Admin, Actor], Coroutine[Any, Any, Output]]


@dataclass(frozen=True, slots=True)
class _Export:
    """``sandcat admin export``: needs the stores and the blob store, not only ``Admin``."""

    user: str
    out: Path

    async def run(self, admin: Admin, actor: Actor, config: Config, stores: Stores) -> Output:
        from sandcat.clock import system_clock
        from sandcat.export import ExportSources, export_to_file
        from sandcat.services import open_blob_store

        if self.out.exists():
            raise BadRequest(f"--out: {self.out} exists (not overwritten)", field="out")
        view = await admin.export_of(actor, self.user)
        blobs, _ = await open_blob_store(config)
        sources = ExportSources.of(stores, blobs)
        written = await export_to_file(sources, view.user.id, self.out, now_ms=system_clock())
        return {"exported": view.as_dict(), "out": str(self.out), "bytes": written}


def _request(args: argparse.Namespace) -> Request | _Export:
    """What to do once the stores are open (passwords are read before they are)."""
    action = args.action
    if action == "export":
        return _Export(args.user, Path(args.out))
    if action == "create-user":
        password = _password(args)

        async def create(admin: Admin, actor: Actor) -> Output:
            view = await admin.create_user(
                actor,
                username=args.username,
                password=password,
                email=args.email,
                email_verified=args.email_verified,
                display_name=args.display_name,
            )
            return {"user": view.as_dict()}

        return create
    if action == "set-password":
        new = _password(args)

        async def set_password(admin: Admin, actor: Actor) -> Output:
            ended = await admin.set_password(actor, args.user, new)
            return {"user": args.user, "ended_sessions": ended}

        return set_password
    simple: dict[str, Request] = {
        "disable": lambda admin, actor: _ended(admin.disable(actor, args.user)),
        "enable": lambda admin, actor: _flag("enabled", admin.enable(actor, args.user)),
        "delete": lambda admin, actor: _erased(admin, actor, args.user),
        "grant-admin": lambda admin, actor: _flag("granted", admin.grant_admin(actor, args.user)),
        "revoke-admin": lambda admin, actor: _flag("revoked", admin.revoke_admin(actor, args.user)),
        "revoke-sessions": lambda admin, actor: _ended(
            admin.revoke_sessions(actor, args.user, args.session)
        ),
        "sessions": lambda admin, actor: _sessions(admin, args.user),
        "lookup": lambda admin, actor: _lookup(admin, args.query),
        "dismiss-group": lambda admin, actor: _dismissed(admin, actor, args.group),
        "stats": lambda admin, actor: _stats(admin, args.days),
        "broadcast": lambda admin, actor: _broadcast(admin, actor, args.text, args.level),
        "audit": lambda admin, actor: _audit(
            admin, args.actor, args.what, _since(args.since), args.limit
        ),
    }
    return simple[action]


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise BadRequest("the two passwords differ", field="password")
    return first


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("--since: must be an ISO 8601 time or epoch ms", field="since") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


async def _ended(done: Coroutine[Any, Any, list[str]]) -> Output:
    return {"ended_sessions": await done}


async def _flag(name: str, done: Coroutine[Any, Any, bool]) -> Output:
    return {name: await done}


async def _erased(admin: Admin, actor: Actor, user: str) -> Output:
    return {"deleted": (await admin.delete_user(actor, user)).as_dict()}


async def _sessions(admin: Admin, user: str) -> Output:
    view, sessions = await admin.sessions(user)
    return {"user": view.as_dict(), "sessions": [session_dict(s) for s in sessions]}


async def _lookup(admin: Admin, query: str) -> Output:
    return {"users": [view.as_dict() for view in await admin.lookup(query)]}


async def _dismissed(admin: Admin, actor: Actor, group: str) -> Output:
    await admin.dismiss_group(actor, group)
    return {"dismissed": group}


async def _stats(admin: Admin, days: int) -> Output:
    return stats_dict(await admin.stats(days=days))


async def _broadcast(admin: Admin, actor: Actor, text: str, level: str) -> Output:
    return {"users": await admin.broadcast(actor, text, level=level)}


async def _audit(
    admin: Admin, actor: str | None, action: str | None, since: int | None, limit: int
) -> Output:
    entries = await admin.audit(actor=actor, action=action, since_ms=since, limit=limit)
    return {"entries": [audit_dict(entry) for entry in entries]}


async def _run(
    config: Config, request: Request | _Export, passwords: PasswordHasher | None
) -> Output:
    from sandcat.clock import system_clock
    from sandcat.domain.contacts import Contacts
    from sandcat.domain.groups import Groups
    from sandcat.pipeline.relay import new_instance_id
    from sandcat.store.backends import open_stores
    from sandcat.store.shared import open_shared_state

    clock = system_clock
    async with (
        open_stores(config, clock, instance=new_instance_id(), serving=False) as stores,
        open_shared_state(config, clock) as shared,
    ):
        admin = Admin(
            accounts=stores.accounts,
            store=stores.admin,
            # No sockets here: members and friends read the notices on their next sync.
            groups=Groups(stores.groups, config=config.chat, clock=clock),
            contacts=Contacts(stores.contacts, clock=clock, notifier=_Unheard()),
            inbox=stores.inbox,
            passwords=passwords or PasswordHasher.from_config(config.auth),
            clock=clock,
            revocations=shared.revocations or stores.revocation_log,
            connections=partial(cli_connections, config, shared.connections),
            # Shared with the servers in a cluster with Redis (in process otherwise).
            cache=shared.cache,
        )
        actor = Actor(f"cli:{_os_user()}", "cli")
        if isinstance(request, _Export):
            return await request.run(admin, actor, config, stores)
        return await request(admin, actor)


class _Unheard:
    """The command line has no sockets to push notices to (``Notifier``)."""

    def publish(self, notices: Sequence[Notice]) -> None:
        del notices


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container)
        import os

        return str(os.getuid())


async def cli_connections(config: Config, book: ConnectionBook) -> Connections | None:
    """The cluster's connections from the connection book in Redis (the instances'
    reports), else the configured instance's from its /metrics; None: unknown."""
    if book.shared:
        from sandcat.clock import system_clock

        try:
            head = await book.total(now_ms=system_clock())
        except Unavailable as exc:
            log.warning("stats: the cluster's connections are unavailable: %s", exc)
        else:
            return Connections(head.connections, "cluster")
    count = await running_connections(config)
    return None if count is None else Connections(count, "instance")


async def running_connections(config: Config) -> int | None:
    """The configured instance's connections (its /metrics), or None if unreachable."""
    host = config.server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - any address: ask this host
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.server.tls_cert_file else "http"
    url = f"{scheme}://{host}:{config.server.http_port}/metrics"
    import httpx

    try:
        async with httpx.AsyncClient(timeout=_METRICS_TIMEOUT_S, verify=False) as client:  # noqa: S501
            reply = await client.get(url)
    except httpx.HTTPError:
        return None
    if reply.status_code != 200:
        return None
    for line in reply.text.splitlines():
        name, _, value = line.partition(" ")
        if name == "sandcat_connections":
            return int(float(value))
    return None


# -- text output ---------------------------------------------------------------------------


def _connections_text(count: int | None, scope: str) -> str:
    if count is None:
        return "unknown (no running instance reachable)"
    if scope == "cluster":
        return f"{count} (cluster: every running instance's, as each reported to Redis)"
    return f"{count} (one instance: the configured one's /metrics; without Redis no cluster count)"


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _user_line(user: Output) -> str:
    flags = [name for name in ("admin", "disabled", "deleted") if user[name]]
    return (
        f"{user['id']}  {user['username']}  {user['display_name']!r}  "
        f"email={user['email'] or '-'}  created={_time(user['created_at'])}  "
        f"last_login={_time(user['last_login_at'])}" + (f"  [{', '.join(flags)}]" if flags else "")
    )


def _text(action: str, output: Output) -> str:
    if "user" in output and isinstance(output["user"], dict) and "sessions" not in output:
        return f"created {_user_line(output['user'])}"
    if "users" in output and isinstance(output["users"], list):
        if not output["users"]:
            return "no such user"
        return "\n".join(_user_line(user) for user in output["users"])
    if "sessions" in output:
        lines = [_user_line(output["user"])]
        lines += [
            f"  session {s['id']}  device {s['device']}  {s['platform']}  ip={s['ip'] or '-'}  "
            f"since={_time(s['created_at'])}  last_used={_time(s['last_used_at'])}"
            for s in output["sessions"]
        ]
        if not output["sessions"]:
            lines.append("  no live sessions")
        return "\n".join(lines)
    if "entries" in output:
        if not output["entries"]:
            return "no audit entries"
        return "\n".join(
            f"{_time(e['at'])}  {e['actor']}  {e['action']}  {e['target']}  from {e['origin']}"
            + (f"  ({e['detail']})" if e["detail"] else "")
            for e in output["entries"]
        )
    if "ended_sessions" in output:
        return f"{action}: done, {len(output['ended_sessions'])} sessions ended"
    if action == "stats":
        connections = output["connections"]
        lines = [
            f"users: {output['users']} ({output['disabled_users']} disabled, "
            f"{output['deleted_users']} deleted)",
            f"active sessions: {output['active_sessions']}",
            "connections: " + _connections_text(connections, output["connections_scope"]),
            f"messages stored: {output['messages']}",
            f"files stored: {output['files']} ({output['file_bytes']} bytes)",
            "sends per day:",
        ]
        lines += [f"  {day['day']}  {day['messages']}" for day in output["sends_per_day"]]
        return "\n".join(lines)
    if action == "delete":
        return f"deleted {_user_line(output['deleted'])}"
    if action == "export":
        return (
            f"exported {_user_line(output['exported'])}\n"
            f"to {output['out']} ({output['bytes']} bytes)"
        )
    if action == "broadcast":
        return f"broadcast: notice posted to {output['users']} users"
    if action == "dismiss-group":
        return f"dismissed group {output['dismissed']}"
    ((_, value),) = output.items()
    return f"{action}: {'done' if value else 'nothing to do'}"
