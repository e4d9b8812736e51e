"""One harness over each relational backend, for the conformance suites.

A conformance test takes the ``backend`` fixture (tests/store/conftest.py),
parametrised over SQLite and PostgreSQL, and uses only the store interfaces
plus the few scene-setting helpers here. Raw SQL in tests is written with
``?`` placeholders and portable syntax; the harness adapts it for psycopg.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sandcat.store.accounts import User
from sandcat.store.postgres import Database as PostgresDatabase
from sandcat.store.postgres import conversations as pg_conversations
from sandcat.store.postgres import open_database as open_postgres
from sandcat.store.postgres.conversation_list import PostgresConversationStore
from sandcat.store.postgres.database import at
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.postgres.inbox import PostgresInboxStore
from sandcat.store.postgres.messages import PostgresMessageStore
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.contacts import SqlContactStore
from sandcat.store.sql.files import SqlFileStore
from sandcat.store.sql.groups.backend import SqlGroupStore
from sandcat.store.sqlite import Database as SqliteDatabase
from sandcat.store.sqlite import conversations as sqlite_conversations
from sandcat.store.sqlite import open_database as open_sqlite
from sandcat.store.sqlite.conversation_list import SqliteConversationStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from sandcat.store.sqlite.inbox import SqliteInboxStore
from sandcat.store.sqlite.messages import SqliteMessageStore

Kind = Literal["sqlite", "postgres"]


def make_user(id_: str, username: str | None = None, **extra: Any) -> User:
    name = username if username is not None else id_
    return User(
        id=id_,
        username=name,
        display_name=name,
        password_hash="h",
        created_at=1,
        updated_at=1,
        **extra,
    )


@dataclass
class Backend:
    kind: Kind
    db: SqliteDatabase | PostgresDatabase
    accounts: SqlAccountStore
    contacts: SqlContactStore
    groups: SqlGroupStore
    messages: SqliteMessageStore | PostgresMessageStore
    files: SqlFileStore
    inbox: SqliteInboxStore | PostgresInboxStore
    conversations: SqliteConversationStore | PostgresConversationStore

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    async def execute(self, sql: str, *args: object) -> None:
        text = self._sql(sql)
        await self.db.write(lambda conn: conn.execute(text, args))  # type: ignore[arg-type]

    async def scalar(self, sql: str, *args: object) -> Any:
        text = self._sql(sql)

        def one(conn: Any) -> Any:
            return conn.execute(text, args).fetchone()[0]

        return await self.db.read(one)

    async def users(self, *users: User) -> None:
        for user in users:
            await self.accounts.create_user(user)

    async def block(self, user: str, blocked: str) -> None:
        created: object = 1 if self.kind == "sqlite" else at(1)
        await self.execute(
            "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)",
            user,
            blocked,
            created,
        )

    async def open_conversation(
        self,
        cid: str,
        kind: Literal["direct", "group"],
        members: Iterable[str],
        *,
        now_ms: int = 1,
        can_send: bool = True,
    ) -> None:
        users = tuple(members)
        if self.kind == "sqlite":
            await self.db.write(  # type: ignore[call-arg]
                lambda conn: sqlite_conversations.open_conversation(
                    conn, cid=cid, kind=kind, members=users, now_ms=now_ms, can_send=can_send
                )
            )
        else:
            await self.db.write(
                lambda conn: pg_conversations.open_conversation(
                    conn, cid=cid, kind=kind, members=users, now_ms=now_ms, can_send=can_send
                )
            )


@asynccontextmanager
async def open_backend(kind: Kind, *, tmp_path: Path, postgres_url: str) -> AsyncIterator[Backend]:
    if kind == "sqlite":
        async with open_sqlite(tmp_path / "db.sqlite", synchronous="NORMAL") as lite:
            yield Backend(
                kind,
                lite,
                SqlAccountStore(lite, SQLITE),
                SqlContactStore(lite, SQLITE),
                SqlGroupStore(lite, SQLITE),
                SqliteMessageStore(lite),
                SqlFileStore(lite, SQLITE),
                SqliteInboxStore(lite),
                SqliteConversationStore(lite),
            )
        return
    async with open_postgres(postgres_url, pool_size=4, timeout_s=10) as pg:
        yield Backend(
            kind,
            pg,
            SqlAccountStore(pg, POSTGRES),
            SqlContactStore(pg, POSTGRES),
            SqlGroupStore(pg, POSTGRES),
            PostgresMessageStore(pg),
            SqlFileStore(pg, POSTGRES),
            PostgresInboxStore(pg),
            PostgresConversationStore(pg),
        )
