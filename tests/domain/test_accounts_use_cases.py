"""Account use cases against the SQLite store (no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher as Argon2

from sandcat.config import AuthConfig
from sandcat.domain.accounts import Accounts, TokenReused
from sandcat.errors import Forbidden, NotFound, Unauthorized
from sandcat.store.accounts import User
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.dialect import DIALECT as SQLITE

SECRET = b"s" * 32


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite") as database:
        yield database


@pytest.fixture
def now() -> list[int]:
    return [1_700_000_000_000]


@pytest.fixture
def accounts(db: Database, now: list[int]) -> Accounts:
    return Accounts(
        SqlAccountStore(db, SQLITE), config=AuthConfig(), secret=SECRET, clock=lambda: now[0]
    )


async def test_authenticate_returns_the_principal(accounts: Accounts) -> None:
    user = await accounts.register(username="alice", password="correct horse")
    login = await accounts.login(login="alice", password="correct horse", device="d1")
    principal = await accounts.authenticate(login.tokens.access_token)
    assert principal == login.principal
    assert (principal.user, principal.device) == (user.id, "d1")


async def test_session_id_survives_refresh(accounts: Accounts) -> None:
    await accounts.register(username="alice", password="correct horse")
    login = await accounts.login(login="alice", password="correct horse")
    pair = await accounts.refresh(login.tokens.refresh_token)
    principal = await accounts.authenticate(pair.access_token)
    assert principal.session == login.principal.session


async def test_reuse_raises_token_reused_naming_the_session(accounts: Accounts) -> None:
    await accounts.register(username="alice", password="correct horse")
    login = await accounts.login(login="alice", password="correct horse")
    await accounts.refresh(login.tokens.refresh_token)
    with pytest.raises(TokenReused) as caught:
        await accounts.refresh(login.tokens.refresh_token)
    assert (caught.value.user, caught.value.session) == (
        login.principal.user,
        login.principal.session,
    )
    assert isinstance(caught.value, Unauthorized)


async def test_disabled_user_cannot_log_in_or_authenticate(
    accounts: Accounts, db: Database
) -> None:
    user = await accounts.register(username="alice", password="correct horse")
    login = await accounts.login(login="alice", password="correct horse")
    await db.write(
        lambda conn: conn.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user.id,))
    )
    with pytest.raises(Unauthorized):
        await accounts.authenticate(login.tokens.access_token)
    with pytest.raises(Unauthorized):
        await accounts.refresh(login.tokens.refresh_token)
    with pytest.raises(Forbidden):
        await accounts.login(login="alice", password="correct horse")


async def test_weak_hash_is_upgraded_on_login(
    db: Database, accounts: Accounts, now: list[int]
) -> None:
    weak = Argon2(time_cost=1, memory_cost=8192, parallelism=1).hash("correct horse")
    store = SqlAccountStore(db, SQLITE)
    await store.create_user(
        User(
            id="old",
            username="old",
            display_name="old",
            password_hash=weak,
            created_at=1,
            updated_at=1,
        )
    )
    await accounts.login(login="old", password="correct horse")
    upgraded = await accounts.get_user("old")
    assert upgraded.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_get_user_unknown_is_not_found(accounts: Accounts) -> None:
    with pytest.raises(NotFound):
        await accounts.get_user("nobody")


async def test_overlong_login_inputs_are_refused_without_lookup(accounts: Accounts) -> None:
    with pytest.raises(Unauthorized):
        await accounts.login(login="a" * 300, password="correct horse")
    with pytest.raises(Unauthorized):
        await accounts.login(login="alice", password="p" * 129)
    with pytest.raises(Unauthorized):
        await accounts.refresh("r" * 300)
