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
from sandcat.store.postgres import open_database as open_postgres
from sandcat.store.postgres.append import message_store as postgres_messages
from sandcat.store.postgres.database import at
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql._tx import Tx
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.contacts import SqlContactStore
from sandcat.store.sql.conversation_list import SqlConversationStore
from sandcat.store.sql.conversations import open_conversation
from sandcat.store.sql.files import SqlFileStore
from sandcat.store.sql.groups.backend import SqlGroupStore
from sandcat.store.sql.inbox import SqlInboxStore
from sandcat.store.sql.messages import SqlMessageStore
from sandcat.store.sqlite import Database as SqliteDatabase
from sandcat.store.sqlite import open_database as open_sqlite
from sandcat.store.sqlite.append import message_store as sqlite_messages
from sandcat.store.sqlite.dialect import DIALECT as SQLITE

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
    messages: SqlMessageStore
    files: SqlFileStore
    inbox: SqlInboxStore
    conversations: SqlConversationStore

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
        dialect = SQLITE if self.kind == "sqlite" else POSTGRES
        await self.db.write(  # type: ignore[call-arg]
            lambda conn: open_conversation(
                Tx(conn, dialect),
                cid=cid,
                kind=kind,
                members=users,
                now_ms=now_ms,
                can_send=can_send,
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
                sqlite_messages(lite),
                SqlFileStore(lite, SQLITE),
                SqlInboxStore(lite, SQLITE),
                SqlConversationStore(lite, SQLITE),
            )
        return
    async with open_postgres(postgres_url, pool_size=4, timeout_s=10) as pg:
        yield Backend(
            kind,
            pg,
            SqlAccountStore(pg, POSTGRES),
            SqlContactStore(pg, POSTGRES),
            SqlGroupStore(pg, POSTGRES),
            postgres_messages(pg),
            SqlFileStore(pg, POSTGRES),
            SqlInboxStore(pg, POSTGRES),
            SqlConversationStore(pg, POSTGRES),
        )
