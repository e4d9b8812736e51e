"""The token key table, on SQLite and PostgreSQL: one key agreed, rotations, adoption."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from sandcat.domain.keyring import open_key_ring, rotate
from sandcat.errors import ConfigError, Conflict
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.sql.token_keys import TokenKeyStore
from sandcat.store.sqlite import open_database
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import Backend

NOW = 1_700_000_000_000
TTL_S = 900


def key_store(backend: Backend) -> TokenKeyStore:
    return TokenKeyStore(backend.db, SQLITE if backend.kind == "sqlite" else POSTGRES)


async def test_instances_starting_together_agree_on_one_key(backend: Backend) -> None:
    store = key_store(backend)
    results: list[bytes] = []

    async def start(secret: bytes) -> None:
        results.append((await store.ensure(secret, now_ms=NOW))[0].secret)

    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(start, bytes([n]) * 32)
    assert len(set(results)) == 1
    assert [key.id for key in await store.keys()] == [1]
    assert (await store.keys())[0].active_at_ms == 0


async def test_a_rotation_adds_a_key_and_forgets_keys_retired_over_a_lifetime_ago(
    backend: Backend,
) -> None:
    store = key_store(backend)
    await store.ensure(b"1" * 32, now_ms=NOW)
    now = [NOW]
    first = await rotate(store, access_ttl_s=TTL_S, refresh_s=30, clock=lambda: now[0])
    assert (first.new.id, first.old.id) == (2, 1)
    assert first.new.active_at_ms == NOW + 60_000
    assert first.old_accepted_until_ms == NOW + 60_000 + TTL_S * 1000
    # Key 2 replaced: key 2 is forgotten once its successor (3) has been active a lifetime.
    now[0] = NOW + 120_000
    second = await rotate(store, access_ttl_s=TTL_S, refresh_s=30, clock=lambda: now[0])
    assert (second.new.id, second.old.id, second.kept) == (3, 2, 3)
    now[0] = second.new.active_at_ms + TTL_S * 1000 + 1
    third = await rotate(store, access_ttl_s=TTL_S, refresh_s=30, clock=lambda: now[0])
    assert [key.id for key in await store.keys()] == [1, 3, 4]  # key 1 stays (codes)
    assert third.kept == 3


async def test_no_rotation_before_a_first_key(backend: Backend) -> None:
    with pytest.raises(Conflict, match="no token key yet"):
        await rotate(key_store(backend), access_ttl_s=TTL_S, refresh_s=1, clock=lambda: NOW)


async def test_an_older_versions_token_key_file_is_adopted(
    backend: Backend, tmp_path: Path
) -> None:
    legacy = tmp_path / "token.key"
    legacy.write_bytes(b"L" * 32)
    store = key_store(backend)
    ring = await open_key_ring("", store, legacy_file=legacy, access_ttl_s=TTL_S, clock=lambda: NOW)
    assert ring.current().secret == b"L" * 32
    assert ring.current().kid == "1"
    # A second instance with no file (or another host's) gets the same key.
    other = await open_key_ring(
        "", store, legacy_file=tmp_path / "none", access_ttl_s=TTL_S, clock=lambda: NOW
    )
    assert other.current().secret == b"L" * 32


async def test_a_token_key_file_that_differs_from_the_database_is_named_in_the_log(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = key_store(backend)
    await store.ensure(b"D" * 32, now_ms=NOW)
    legacy = tmp_path / "token.key"
    legacy.write_bytes(b"L" * 32)
    with caplog.at_level(logging.WARNING):
        ring = await open_key_ring(
            "", store, legacy_file=legacy, access_ttl_s=TTL_S, clock=lambda: NOW
        )
    assert ring.current().secret == b"D" * 32
    assert str(legacy) in caplog.text


async def test_a_short_token_key_file_is_a_startup_error(backend: Backend, tmp_path: Path) -> None:
    legacy = tmp_path / "token.key"
    legacy.write_bytes(b"L" * 31)
    with pytest.raises(ConfigError, match="under 32 bytes"):
        await open_key_ring(
            "", key_store(backend), legacy_file=legacy, access_ttl_s=TTL_S, clock=lambda: NOW
        )


async def test_a_configured_secret_wins_over_the_database(backend: Backend, tmp_path: Path) -> None:
    store = key_store(backend)
    await store.ensure(b"D" * 32, now_ms=NOW)
    ring = await open_key_ring(
        "c" * 32, store, legacy_file=tmp_path / "none", access_ttl_s=TTL_S, clock=lambda: NOW
    )
    assert ring.current().secret == b"c" * 32
    assert ring.current().kid == ""
    with pytest.raises(ConfigError, match=r"auth\.token_secret"):
        await open_key_ring(
            "c" * 31, store, legacy_file=tmp_path / "none", access_ttl_s=TTL_S, clock=lambda: NOW
        )


async def test_a_ring_picks_a_rotation_up_on_refresh(backend: Backend, tmp_path: Path) -> None:
    store = key_store(backend)
    now = [NOW]
    ring = await open_key_ring(
        "", store, legacy_file=tmp_path / "none", access_ttl_s=TTL_S, clock=lambda: now[0]
    )
    rotation = await rotate(store, access_ttl_s=TTL_S, refresh_s=1, clock=lambda: now[0])
    assert ring.find("2") is None
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: ring.run(interval_s=0.05, task_status=task_status)
            )
            await trio.sleep(0.5)  # ten refresh periods
            nursery.cancel_scope.cancel()
    assert ring.find("2") is not None
    assert ring.current().kid == "1"
    now[0] = rotation.new.active_at_ms
    assert ring.current().kid == "2"


async def test_a_failed_refresh_keeps_the_keys_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_database(tmp_path / "db.sqlite", synchronous="NORMAL") as db:
        store = TokenKeyStore(db, SQLITE)
        ring = await open_key_ring(
            "", store, legacy_file=tmp_path / "none", access_ttl_s=TTL_S, clock=lambda: NOW
        )
    held = ring.current()
    with caplog.at_level(logging.WARNING), trio.move_on_after(0.3):
        await ring.run(interval_s=0.05)
    assert "token keys not refreshed (keeping 1): database is closed" in caplog.text
    assert ring.current() == held
