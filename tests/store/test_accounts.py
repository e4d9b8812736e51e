"""AccountStore conformance: every implementation, same behaviour."""

from __future__ import annotations

import pytest
import trio

from sandcat.errors import Conflict
from sandcat.store.accounts import AccountStore, Session, User
from tests.store.backend import Backend


def user(id_: str, username: str, **extra: object) -> User:
    return User(
        id=id_,
        username=username,
        display_name=username,
        password_hash="h",
        created_at=1,
        updated_at=1,
        **extra,  # type: ignore[arg-type]
    )


def session(id_: str, family: str, refresh_hash: str, *, expires_at: int = 10_000) -> Session:
    return Session(
        id=id_,
        family=family,
        user="u1",
        device="d1",
        platform="web",
        refresh_hash=refresh_hash,
        created_at=100,
        expires_at=expires_at,
        ip="10.0.0.1",
    )


@pytest.fixture
def store(backend: Backend) -> AccountStore:
    return backend.accounts


async def test_duplicates_raise_conflict_naming_the_field(store: AccountStore) -> None:
    await store.create_user(user("u1", "alice", email="a@x.io", phone="+100"))
    for dup, field in (
        (user("u2", "alice"), "username"),
        (user("u2", "bob", email="a@x.io"), "email"),
        (user("u2", "bob", phone="+100"), "phone"),
    ):
        with pytest.raises(Conflict) as caught:
            await store.create_user(dup)
        assert caught.value.field == field


async def test_find_login_prefers_username_then_email_then_phone(
    store: AccountStore,
) -> None:
    await store.create_user(user("u1", "alice", email="a@x.io", phone="5551234"))
    await store.create_user(user("u2", "5551234"))
    found = await store.find_login("5551234")
    assert found is not None
    assert found.id == "u2"
    found = await store.find_login("A@X.IO")
    assert found is not None
    assert found.id == "u1"
    assert await store.find_login("nobody") is None


async def test_values_round_trip_byte_for_byte(store: AccountStore) -> None:
    nasty = "'); DROP TABLE users;--"
    await store.create_user(
        User(
            id="u1",
            username="x",
            display_name=nasty,
            password_hash=nasty,
            created_at=1,
            updated_at=1,
        )
    )
    found = await store.get_user("u1")
    assert found is not None
    assert found.display_name == nasty


async def test_rotation_outcomes(store: AccountStore) -> None:
    await store.create_user(user("u1", "alice"))
    await store.start_session(session("s1", "f1", "h1"))
    assert await store.is_session_active("u1", "f1")

    async def rotate(old: str, new: str, now: int = 200) -> str:
        rotation = await store.rotate_session(
            old, new_id=f"row-{new}", new_hash=new, now_ms=now, expires_at_ms=now + 1000, ip=None
        )
        return rotation.outcome

    assert await rotate("h1", "h2") == "rotated"
    assert await rotate("h2", "h3") == "rotated"
    assert await rotate("missing", "h4") == "invalid"
    assert await store.is_session_active("u1", "f1")
    assert await rotate("h1", "h5") == "reused"
    assert not await store.is_session_active("u1", "f1")
    assert await rotate("h3", "h6") == "reused"


async def test_expired_refresh_token_is_invalid(store: AccountStore) -> None:
    await store.create_user(user("u1", "alice"))
    await store.start_session(session("s1", "f1", "h1", expires_at=150))
    rotation = await store.rotate_session(
        "h1", new_id="s2", new_hash="h2", now_ms=200, expires_at_ms=1000, ip=None
    )
    assert rotation.outcome == "invalid"


async def test_revoke_session_affects_only_that_family(store: AccountStore) -> None:
    await store.create_user(user("u1", "alice"))
    await store.start_session(session("s1", "f1", "h1"))
    await store.start_session(session("s2", "f2", "h2"))
    await store.revoke_session("u1", "f1", now_ms=300)
    assert not await store.is_session_active("u1", "f1")
    assert await store.is_session_active("u1", "f2")
    assert not await store.is_session_active("someone-else", "f2")
    found = await store.get_user("u1")
    assert found is not None
    assert found.last_login_ip == "10.0.0.1"


async def test_times_round_trip_to_the_millisecond(store: AccountStore) -> None:
    with trio.fail_after(5):
        when = 1_700_000_000_123
        await store.create_user(
            User(
                id="u1",
                username="alice",
                display_name="A",
                password_hash="h",
                created_at=when,
                updated_at=when + 1,
                disabled=True,
            )
        )
        found = await store.get_user("u1")
        assert found is not None
        assert (found.created_at, found.updated_at, found.disabled) == (when, when + 1, True)
        assert found.last_login_at is None


async def test_a_disabled_user_has_no_active_session_and_cannot_rotate(
    store: AccountStore,
) -> None:
    with trio.fail_after(5):
        await store.create_user(user("u1", "alice", disabled=True))
        await store.start_session(session("s1", "f1", "h1"))
        assert not await store.is_session_active("u1", "f1")
        rotation = await store.rotate_session(
            "h1", new_id="s2", new_hash="h2", now_ms=200, expires_at_ms=1000, ip=None
        )
        assert rotation.outcome == "invalid"


async def test_login_records_time_ip_and_an_upgraded_hash(store: AccountStore) -> None:
    with trio.fail_after(5):
        await store.create_user(user("u1", "alice"))
        await store.start_session(session("s1", "f1", "h1"), rehash="better")
        found = await store.get_user("u1")
        assert found is not None
        assert (found.last_login_at, found.last_login_ip, found.password_hash) == (
            100,
            "10.0.0.1",
            "better",
        )
