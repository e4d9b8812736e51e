"""AccountStore conformance: every implementation, same behaviour."""

from __future__ import annotations

import dataclasses

import pytest
import trio

from sandcat.errors import Conflict
from sandcat.store.accounts import AccountStore, OAuthState, Session, User
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


async def test_profile_updates_round_trip_and_phone_stays_unique(store: AccountStore) -> None:
    await store.create_user(user("u1", "ann"))
    await store.create_user(user("u2", "bob", phone="+15550001111"))
    changes = {
        "display_name": "Ann Lee",
        "gender": "female",
        "birthday": "1990-04-01",
        "signature": "hi",
        "region": "Lisbon",
        "language": "pt-BR",
        "avatar": "a.png",
        "phone": "+351912345678",
        "find_by_email": 0,
        "find_by_phone": 1,
    }
    updated = await store.update_profile("u1", changes, now_ms=50)
    assert (updated.display_name, updated.gender, updated.birthday) == (
        "Ann Lee",
        "female",
        "1990-04-01",
    )
    assert (updated.signature, updated.region, updated.language) == ("hi", "Lisbon", "pt-BR")
    assert (updated.avatar, updated.phone, updated.updated_at) == ("a.png", "+351912345678", 50)
    assert (updated.find_by_email, updated.find_by_phone) == (False, True)
    assert await store.get_user("u1") == updated
    with pytest.raises(Conflict) as caught:
        await store.update_profile("u1", {"phone": "+15550001111"}, now_ms=51)
    assert caught.value.field == "phone"
    # Field names become column names: anything but a profile field is refused.
    with pytest.raises(ValueError, match="password_hash"):
        await store.update_profile("u1", {"bio": "x", "password_hash": "x"}, now_ms=52)
    assert await store.get_user("u1") == updated


async def test_search_exact_then_prefix_without_hidden_users(backend: Backend) -> None:
    store = backend.accounts
    await store.create_user(user("u1", "anna", email="anna@x.test", phone="+15550002222"))
    await store.create_user(user("u2", "ann"))
    await store.create_user(dataclasses.replace(user("u3", "zed"), display_name="Annabel"))
    await store.create_user(user("u4", "annex", disabled=True))
    await store.create_user(user("u5", "annie"))
    await store.create_user(user("me", "searcher"))
    await backend.block("u5", "me")

    async def found(query: str, **page: int) -> list[tuple[str, str]]:
        hits = await store.search(
            "me", query, limit=page.get("limit", 10), offset=page.get("offset", 0)
        )
        return [(f.user.id, f.match) for f in hits]

    assert await found("ANN") == [("u2", "username"), ("u1", "prefix"), ("u3", "prefix")]
    assert await found("anna@x.test") == [("u1", "email")]
    assert await found("+15550002222") == [("u1", "phone")]
    assert await found("an", limit=1, offset=1) == [("u1", "prefix")]
    assert await found("searcher") == []
    await store.update_profile("u1", {"find_by_email": 0, "find_by_phone": 0}, now_ms=2)
    assert await found("anna@x.test") == []
    assert await found("+15550002222") == []
    assert await store.visible_user("me", "u1") is not None
    assert await store.visible_user("me", "u4") is None
    assert await store.visible_user("me", "u5") is None


async def test_search_orders_exact_matches_then_usernames_bytewise(backend: Backend) -> None:
    """One order on both engines (the twins once differed in how they wrote it): exact
    matches first, then by username, compared as bytes (no locale), then by id."""
    store = backend.accounts
    await store.create_user(user("u1", "annz"))
    await store.create_user(user("u2", "ann\u00e4"))  # UTF-8 0xC3: after 'z' bytewise
    await store.create_user(dataclasses.replace(user("u3", "zed"), display_name="Annabel"))
    await store.create_user(user("u4", "ann"))
    await store.create_user(user("u5", "zzz", email="ann"))
    await store.create_user(user("me", "searcher"))
    hits = await store.search("me", "ann", limit=10, offset=0)
    assert [(f.user.id, f.match) for f in hits] == [
        ("u4", "username"),
        ("u5", "email"),
        ("u1", "prefix"),
        ("u2", "prefix"),
        ("u3", "prefix"),
    ]


async def test_sessions_list_and_credentials_end_them(store: AccountStore) -> None:
    await store.create_user(user("u1", "ann"))
    await store.start_session(session("s1", "f1", "h1"))
    await store.start_session(session("s2", "f2", "h2", expires_at=20_000))
    await store.start_session(session("s3", "f3", "h3", expires_at=150))
    listed = await store.list_sessions("u1", now_ms=200)
    assert sorted((s.id, s.device, s.created_at) for s in listed) == [
        ("f1", "d1", 100),
        ("f2", "d1", 100),
    ]
    assert (await store.get_user("u1")).last_login_device == "d1"  # type: ignore[union-attr]
    assert await store.set_password("u1", "new-hash", keep="f1", now_ms=300) == ["f2", "f3"]
    assert (await store.get_user("u1")).password_hash == "new-hash"  # type: ignore[union-attr]
    assert await store.is_session_active("u1", "f1")
    assert not await store.is_session_active("u1", "f2")
    assert await store.revoke_session("u1", "f1", now_ms=301)
    assert not await store.revoke_session("u1", "f1", now_ms=302)
    await store.start_session(session("s4", "f4", "h4"))
    assert await store.revoke_all("u1", now_ms=303) == ["f4"]
    await store.start_session(session("s5", "f5", "h5"))
    assert await store.disable("u1", now_ms=304) == ["f5"]
    assert (await store.get_user("u1")).disabled  # type: ignore[union-attr]


async def test_codes_are_single_use_expire_and_burn(store: AccountStore) -> None:
    await store.put_code("a@x.test", "reset", "h1", expires_at_ms=1000, now_ms=0)
    assert not await store.take_code("a@x.test", "reset", "nope", now_ms=10, max_attempts=2)
    # The second wrong guess of two allowed burnt the code: the right one fails now.
    assert not await store.take_code("a@x.test", "reset", "nope", now_ms=10, max_attempts=2)
    assert not await store.take_code("a@x.test", "reset", "h1", now_ms=10, max_attempts=2)
    await store.put_code("a@x.test", "reset", "h2", expires_at_ms=1000, now_ms=20)
    assert not await store.take_code("a@x.test", "register", "h2", now_ms=30, max_attempts=5)
    assert await store.take_code("a@x.test", "reset", "h2", now_ms=30, max_attempts=5)
    assert not await store.take_code("a@x.test", "reset", "h2", now_ms=31, max_attempts=5)
    await store.put_code("a@x.test", "reset", "h3", expires_at_ms=1000, now_ms=40)
    assert not await store.take_code("a@x.test", "reset", "h3", now_ms=1000, max_attempts=5)
    await store.put_code("b@x.test", "reset", "h4", expires_at_ms=1000, now_ms=40)
    assert await store.expire_codes(now_ms=1000) == 1


async def test_oauth_states_and_identities(store: AccountStore) -> None:
    state = OAuthState(provider="github", verifier="v", device="d", platform=None, expires_at=500)
    await store.put_state("s1", state)
    assert await store.take_state("s1", now_ms=100) == state
    assert await store.take_state("s1", now_ms=100) is None
    await store.put_state("s2", state)
    assert await store.take_state("s2", now_ms=500) is None
    new = user("u9", "octo")
    await store.link_identity("github", "42", new, create=True, now_ms=1)
    assert (await store.find_identity("github", "42")) == new
    assert await store.find_identity("github", "43") is None
    with pytest.raises(Conflict) as caught:
        await store.link_identity("github", "44", user("u10", "OCTO"), create=True, now_ms=1)
    assert caught.value.field == "username"
