"""Sessions found live are trusted for ``auth.session_cache_ms`` without a database
query; every revocation made through Accounts applies at once, and one made
elsewhere (another instance, straight in the database) within that time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandcat.config import AuthConfig
from sandcat.domain.accounts import Accounts, Login, TokenReused
from sandcat.errors import Unauthorized
from sandcat.store.cache import LocalCache
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.dialect import DIALECT as SQLITE

SECRET = b"s" * 32


class CountingStore(SqlAccountStore):
    """The real SQLite store, counting the session checks that reach it."""

    checks = 0

    async def is_session_active(self, user: str, session: str) -> bool:
        self.checks += 1
        return await super().is_session_active(user, session)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "db.sqlite") as database:
        yield database


@pytest.fixture
def now() -> list[int]:
    return [1_700_000_000_000]


@pytest.fixture
def store(db: Database) -> CountingStore:
    return CountingStore(db, SQLITE)


def accounts_over(store: CountingStore, now: list[int]) -> Accounts:
    clock = lambda: now[0]  # noqa: E731
    return Accounts(
        store, config=AuthConfig(), secret=SECRET, clock=clock, sessions=LocalCache(clock)
    )


async def login(accounts: Accounts) -> Login:
    await accounts.register(username="alice", password="correct horse")
    return await accounts.login(login="alice", password="correct horse", device="d1")


async def test_a_live_session_is_checked_once_per_window(
    store: CountingStore, now: list[int]
) -> None:
    accounts = accounts_over(store, now)
    token = (await login(accounts)).tokens.access_token
    for _ in range(5):
        await accounts.authenticate(token)
    assert store.checks == 1
    now[0] += 1_000
    await accounts.authenticate(token)
    assert store.checks == 2


async def test_revocations_through_accounts_apply_at_once(
    store: CountingStore, now: list[int]
) -> None:
    accounts = accounts_over(store, now)
    signed_in = await login(accounts)
    token = signed_in.tokens.access_token
    await accounts.authenticate(token)
    await accounts.logout(signed_in.principal)
    with pytest.raises(Unauthorized):
        await accounts.authenticate(token)


async def test_a_reused_refresh_token_ends_the_cached_session_at_once(
    store: CountingStore, now: list[int]
) -> None:
    accounts = accounts_over(store, now)
    signed_in = await login(accounts)
    pair = await accounts.refresh(signed_in.tokens.refresh_token)
    await accounts.authenticate(pair.access_token)
    with pytest.raises(TokenReused):
        await accounts.refresh(signed_in.tokens.refresh_token)
    with pytest.raises(Unauthorized):
        await accounts.authenticate(pair.access_token)


async def test_a_revocation_made_elsewhere_applies_within_the_window(
    store: CountingStore, now: list[int]
) -> None:
    here, elsewhere = accounts_over(store, now), accounts_over(store, now)
    signed_in = await login(here)
    token = signed_in.tokens.access_token
    await here.authenticate(token)
    await elsewhere.logout(signed_in.principal)  # another instance, its own cache
    await here.authenticate(token)  # still trusted: inside the window
    now[0] += 1_000
    with pytest.raises(Unauthorized):
        await here.authenticate(token)


async def test_a_zero_window_asks_every_time(store: CountingStore, now: list[int]) -> None:
    accounts = Accounts(
        store,
        config=AuthConfig(session_cache_ms=0),
        secret=SECRET,
        clock=lambda: now[0],
    )
    token = (await login(accounts)).tokens.access_token
    for _ in range(3):
        await accounts.authenticate(token)
    assert store.checks == 3
