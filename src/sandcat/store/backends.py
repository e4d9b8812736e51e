"""Backend selection: one set of store interfaces, an embedded and a real implementation.

``backends.database_url`` chooses: empty or ``sqlite:///PATH`` is the
embedded SQLite file, ``postgresql://...`` (or ``postgres://``) is PostgreSQL
for every relational store. The rest of the server only sees the Protocols.
With ``backends.kafka_bootstrap`` (PostgreSQL only) the message store also
writes the transactional outbox, and ``Stores.outbox`` is where it lives.
With ``backends.mongo_url`` the inbox lives in MongoDB, and the relational
inbox table becomes ``Stores.notice_outbox`` (``sandcat.store.inbox.NoticeOutbox``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import trio

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.errors import BackendFailure, ConfigError, ignore_failure
from sandcat.private_files import make_private_dir
from sandcat.store.accounts import AccountStore
from sandcat.store.census import CensusStore
from sandcat.store.contacts import ContactStore
from sandcat.store.conversations import ConversationStore
from sandcat.store.files import FileStore
from sandcat.store.groups import GroupStore
from sandcat.store.history import HistoryStore
from sandcat.store.inbox import InboxStore, NoticeOutbox
from sandcat.store.messages import MessageStore
from sandcat.store.outbox import Outbox
from sandcat.store.reach import ReachStore
from sandcat.store.sql._tx import Database, Dialect
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.admin import SqlAdminStore
from sandcat.store.sql.census import SqlCensusStore
from sandcat.store.sql.contacts import SqlContactStore
from sandcat.store.sql.conversation_list import SqlConversationStore
from sandcat.store.sql.files import SqlFileStore
from sandcat.store.sql.groups.backend import SqlGroupStore
from sandcat.store.sql.history import SqlHistoryStore
from sandcat.store.sql.inbox import SqlInboxStore
from sandcat.store.sql.reach import SqlReachStore
from sandcat.store.sql.revocation_log import SqlRevocationLog
from sandcat.store.sql.token_keys import TokenKeyStore

if TYPE_CHECKING:
    from sandcat.store.postgres.leases import PostgresLeaseStore

#: A background task a backend needs in the root nursery (started with ``start``).
Janitor = Callable[..., Awaitable[None]]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class Stores:
    kind: str
    accounts: AccountStore
    contacts: ContactStore
    groups: GroupStore
    messages: MessageStore
    files: FileStore
    inbox: InboxStore
    conversations: ConversationStore
    history: HistoryStore
    #: The access-token signing keys (both backends, one implementation).
    token_keys: TokenKeyStore
    #: Counts of accounts and live sessions (the cluster-wide gauges).
    census: CensusStore
    #: The server-admin role, the audit log and the statistics.
    admin: SqlAdminStore
    #: The revocation log in the database, for servers without Redis.
    revocation_log: SqlRevocationLog
    janitor: Janitor | None = None
    #: Cluster mode: this instance's outbox (PostgreSQL with Kafka).
    outbox: Outbox | None = None
    #: Who typing, presence and calls may reach (set by both backends).
    reach: ReachStore | None = None
    #: With the inbox in MongoDB: the relational notices waiting to be moved there.
    notice_outbox: NoticeOutbox | None = None
    #: Who runs each cluster singleton task (PostgreSQL; ``sandcat.leadership``).
    leases: PostgresLeaseStore | None = None


def is_postgres(config: Config) -> bool:
    return config.backends.database_url.startswith(_POSTGRES_SCHEMES)


def sqlite_path(config: Config) -> Path:
    """The SQLite file: ``sandcat.db`` in the data directory, or ``sqlite:///PATH``
    (a relative PATH is relative to the working directory; ``sqlite:////abs`` is absolute)."""
    url = config.backends.database_url
    if not url:
        return config.data_path / "sandcat.db"
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    raise ConfigError("backends.database_url", url, "must be sqlite:///PATH or postgresql://...")


def ready_sqlite_path(config: Config) -> Path:
    """``sqlite_path``, its folder checked: the data directory is made if missing, but
    the folder of an explicit ``sqlite:///PATH`` must exist (``ConfigError`` naming
    it): a typo in a path must not silently start an empty database elsewhere."""
    path = sqlite_path(config)
    if not config.backends.database_url:
        make_private_dir(config.data_path)
    elif not path.parent.is_dir():
        raise ConfigError(
            "backends.database_url",
            config.backends.database_url,
            f"the folder {path.parent.absolute()} does not exist (a relative sqlite:///PATH "
            "is relative to the working directory; sqlite:////PATH is absolute)",
        )
    return path


def check_bus(config: Config) -> None:
    """Kafka needs the outbox, and the outbox lives in PostgreSQL."""
    if config.backends.kafka_bootstrap and not is_postgres(config):
        raise ConfigError(
            "backends.kafka_bootstrap",
            config.backends.kafka_bootstrap,
            "needs backends.database_url = postgresql://... (the outbox is in PostgreSQL)",
        )


@asynccontextmanager
async def open_stores(
    config: Config,
    clock: Clock,
    *,
    instance: str = "",
    serving: bool = True,
    on_failure: BackendFailure = ignore_failure,
) -> AsyncIterator[Stores]:
    """Open the configured database (migrating it) and the stores over it.

    ``instance`` names this process as the owner of the outbox rows it writes.
    ``serving=False`` (``sandcat admin``) opens an embedded database beside a
    running server instead of taking the one-server lock. ``on_failure`` hears
    of every failed database (and MongoDB) call.
    """
    check_bus(config)
    async with _open_relational(config, clock, instance, serving, on_failure) as stores:
        if not config.backends.mongo_url:
            yield stores
            return
        from sandcat.store.mongo import MongoInboxStore, open_mongo

        async with open_mongo(
            config.backends.mongo_url,
            timeout_s=config.backends.mongo_timeout_s,
            on_failure=on_failure,
        ) as client:
            inbox = MongoInboxStore(client)
            await inbox.prepare()
            yield replace(stores, inbox=inbox, notice_outbox=stores.inbox)  # type: ignore[arg-type]


class _SqlStores(TypedDict):
    accounts: SqlAccountStore
    contacts: SqlContactStore
    files: SqlFileStore
    token_keys: TokenKeyStore
    admin: SqlAdminStore
    revocation_log: SqlRevocationLog
    inbox: SqlInboxStore
    conversations: SqlConversationStore
    history: SqlHistoryStore
    reach: SqlReachStore
    census: SqlCensusStore


def _sql_stores(db: Database, dialect: Dialect, clock: Clock) -> _SqlStores:
    """The stores written once over ``store.sql``: the same set for either engine."""
    return _SqlStores(
        admin=SqlAdminStore(db, dialect),
        revocation_log=SqlRevocationLog(db, dialect, clock=clock),
        accounts=SqlAccountStore(db, dialect),
        contacts=SqlContactStore(db, dialect),
        files=SqlFileStore(db, dialect),
        token_keys=TokenKeyStore(db, dialect),
        inbox=SqlInboxStore(db, dialect),
        conversations=SqlConversationStore(db, dialect),
        history=SqlHistoryStore(db, dialect),
        reach=SqlReachStore(db, dialect),
        census=SqlCensusStore(db, dialect),
    )


@asynccontextmanager
async def _open_relational(
    config: Config, clock: Clock, instance: str, serving: bool, on_failure: BackendFailure
) -> AsyncIterator[Stores]:
    if is_postgres(config):
        async with _open_postgres(config, clock, instance, on_failure) as stores:
            yield stores
        return
    from sandcat.store.sqlite import open_database
    from sandcat.store.sqlite.append import message_store as sqlite_messages
    from sandcat.store.sqlite.dialect import DIALECT as SQLITE
    from sandcat.store.sqlite.lock import serve_lock

    path = ready_sqlite_path(config)
    with serve_lock(path) if serving else nullcontext():
        async with open_database(
            path, synchronous=config.backends.sqlite_synchronous, on_failure=on_failure
        ) as db:
            janitor = None
            if config.retention.messages_days:
                from sandcat.store.sqlite.retention import run_retention_janitor

                janitor = partial(
                    run_retention_janitor,
                    db,
                    clock,
                    messages_days=config.retention.messages_days,
                    interval_s=config.backends.janitor_interval_s,
                )
            yield Stores(
                kind="sqlite",
                **_sql_stores(db, SQLITE, clock),
                groups=SqlGroupStore(db, SQLITE),
                messages=sqlite_messages(db),
                janitor=janitor,
            )


@asynccontextmanager
async def _open_postgres(
    config: Config, clock: Clock, instance: str, on_failure: BackendFailure
) -> AsyncIterator[Stores]:
    from sandcat.store.outbox import OutboxSignal
    from sandcat.store.postgres import open_database
    from sandcat.store.postgres.append import message_store as postgres_messages
    from sandcat.store.postgres.dialect import DIALECT as POSTGRES
    from sandcat.store.postgres.dialect import dialect
    from sandcat.store.postgres.leases import PostgresLeaseStore
    from sandcat.store.postgres.outbox import PostgresOutboxStore
    from sandcat.store.postgres.partitions import run_partition_janitor

    settings = config.backends
    async with open_database(
        settings.database_url,
        pool_size=settings.postgres_pool_size,
        timeout_s=settings.postgres_timeout_s,
        on_failure=on_failure,
    ) as db:

        async def janitor(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            await run_partition_janitor(
                db,
                clock,
                months_ahead=settings.partitions_ahead_months,
                interval_s=settings.janitor_interval_s,
                messages_days=config.retention.messages_days,
                archive=config.retention.archive == "detach",
                task_status=task_status,
            )

        outbox = None
        if settings.kafka_bootstrap:
            outbox = Outbox(PostgresOutboxStore(db), owner=instance, signal=OutboxSignal())
        yield Stores(
            kind="postgres",
            **_sql_stores(db, POSTGRES, clock),
            groups=SqlGroupStore(
                db,
                dialect(None if outbox is None else outbox.owner),
                committed=None if outbox is None else outbox.signal.set,
            ),
            messages=postgres_messages(db, outbox=outbox),
            janitor=janitor,
            outbox=outbox,
            leases=PostgresLeaseStore(db),
        )


@asynccontextmanager
async def open_token_keys(config: Config) -> AsyncIterator[TokenKeyStore]:
    """The token key table alone (migrating the database), for admin commands."""
    if is_postgres(config):
        from sandcat.store.postgres import open_database as open_postgres
        from sandcat.store.postgres.dialect import DIALECT as POSTGRES

        async with open_postgres(
            config.backends.database_url,
            pool_size=1,
            timeout_s=config.backends.postgres_timeout_s,
        ) as pg:
            yield TokenKeyStore(pg, POSTGRES)
        return
    from sandcat.store.sqlite import open_database
    from sandcat.store.sqlite.dialect import DIALECT as SQLITE

    async with open_database(
        ready_sqlite_path(config), synchronous=config.backends.sqlite_synchronous
    ) as lite:
        yield TokenKeyStore(lite, SQLITE)


async def migrate_database(config: Config) -> str:
    """Bring the configured database's schema (and MongoDB's inbox indexes, with a
    ``mongo_url``) up to date; a line saying what was done."""
    done = await _migrate_relational(config)
    if not config.backends.mongo_url:
        return done
    from sandcat.store.mongo import MongoInboxStore, open_mongo

    async with open_mongo(
        config.backends.mongo_url, timeout_s=config.backends.mongo_timeout_s
    ) as client:
        await MongoInboxStore(client).prepare()
    return f"{done}; mongodb inbox indexes ready"


async def _migrate_relational(config: Config) -> str:
    if is_postgres(config):
        from sandcat.store.postgres.database import Database
        from sandcat.store.postgres.schema import MIGRATIONS, migrate

        db = Database(
            config.backends.database_url,
            pool_size=1,
            timeout_s=config.backends.postgres_timeout_s,
        )
        try:
            applied = await migrate(db)
        finally:
            await db.aclose()
        done = ", ".join(applied) if applied else "nothing to apply"
        return f"postgresql schema at version {len(MIGRATIONS)} ({done})"
    from sandcat.store.sqlite import open_database
    from sandcat.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS

    path = ready_sqlite_path(config)
    async with open_database(path, synchronous=config.backends.sqlite_synchronous):
        pass
    return f"sqlite schema at version {len(SQLITE_MIGRATIONS)} ({path})"
