"""The admin store and the database revocation log, on SQLite and PostgreSQL."""

from __future__ import annotations

from sandcat.store.admin import AuditEntry
from sandcat.store.postgres.database import at as timestamp
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.revocations import Revoked
from sandcat.store.sql._tx import Dialect
from sandcat.store.sql.admin import SqlAdminStore
from sandcat.store.sql.revocation_log import SqlRevocationLog
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.api.api_harness import ManualClock
from tests.store.backend import Backend, make_user

DAY_MS = 86_400_000


def dialect(backend: Backend) -> Dialect:
    return SQLITE if backend.kind == "sqlite" else POSTGRES


async def test_the_role_flags_and_enable(backend: Backend) -> None:
    store = SqlAdminStore(backend.db, dialect(backend))
    await backend.users(make_user("u1"), make_user("u2"))
    assert await store.flags("u1") == (False, None)
    assert await store.flags("nobody") == (False, None)
    assert await store.grant_admin("u1", by="cli:root", now_ms=5) is True
    assert await store.grant_admin("u1", by="cli:root", now_ms=6) is False
    assert await store.is_admin("u1")
    assert not await store.is_admin("u2")
    assert await store.admins() == ["u1"]
    # A disabled admin is no admin until enabled again.
    await backend.accounts.disable("u1", now_ms=7)
    assert not await store.is_admin("u1")
    assert await store.set_enabled("u1", now_ms=8) is True
    assert await store.set_enabled("u1", now_ms=9) is False
    assert await store.is_admin("u1")
    assert await store.revoke_admin("u1") is True
    assert await store.revoke_admin("u1") is False
    assert await store.admins() == []


async def test_erase_keeps_a_tombstone(backend: Backend) -> None:
    store = SqlAdminStore(backend.db, dialect(backend))
    await backend.users(make_user("u1", email="a@x.org", phone="+15551234567"), make_user("u2"))
    await backend.block("u2", "u1")
    await store.grant_admin("u1", by="x", now_ms=1)
    await store.erase_user(
        "u1", display_name="Deleted user", avatar="a", password_hash="p", now_ms=DAY_MS
    )
    user = await backend.accounts.get_user("u1")
    assert user is not None
    assert (user.username, user.display_name, user.email, user.phone, user.disabled) == (
        "u1",
        "Deleted user",
        None,
        None,
        True,
    )
    assert await store.flags("u1") == (False, DAY_MS)
    assert await backend.scalar("SELECT COUNT(*) FROM blocks") == 0
    # A deleted account is never enabled again, nor counted, nor broadcast to.
    assert await store.set_enabled("u1", now_ms=DAY_MS + 1) is False
    assert await store.user_ids(after="", limit=10) == ["u2"]
    stats = await store.stats(now_ms=DAY_MS, days=1)
    assert (stats.users, stats.disabled_users, stats.deleted_users) == (1, 0, 1)


async def test_audit_filters_and_order(backend: Backend) -> None:
    store = SqlAdminStore(backend.db, dialect(backend))
    for n, (actor, action) in enumerate(
        [("cli:root", "create-user"), ("u1", "disable"), ("u1", "enable"), ("cli:root", "disable")]
    ):
        await store.record(
            AuditEntry(actor=actor, action=action, target="t", origin="cli", at=1000 * (n + 1))
        )
    everything = await store.audit(actor=None, action=None, since_ms=None, limit=10)
    assert [(e.at, e.action) for e in everything] == [
        (4000, "disable"),
        (3000, "enable"),
        (2000, "disable"),
        (1000, "create-user"),
    ]
    found = await store.audit(actor="u1", action="disable", since_ms=None, limit=10)
    assert [e.at for e in found] == [2000]
    assert [e.at for e in await store.audit(actor=None, action=None, since_ms=3000, limit=10)] == [
        4000,
        3000,
    ]
    assert len(await store.audit(actor=None, action=None, since_ms=None, limit=1)) == 1


async def test_stats_and_paging(backend: Backend) -> None:
    store = SqlAdminStore(backend.db, dialect(backend))
    await backend.users(*(make_user(f"u{n}") for n in range(5)))
    assert await store.user_ids(after="", limit=2) == ["u0", "u1"]
    assert await store.user_ids(after="u3", limit=2) == ["u4"]
    stats = await store.stats(now_ms=3 * DAY_MS + 5, days=3)
    assert stats.users == 5
    assert stats.sends_per_day == [(DAY_MS, 0), (2 * DAY_MS, 0), (3 * DAY_MS, 0)]
    # Messages on day 0 (outside the window), day 1 (two, at its first and last ms) and 3.
    await backend.open_conversation("d:u0:u1", "direct", ["u0", "u1"])
    for seq, at in enumerate([DAY_MS - 1, DAY_MS, 2 * DAY_MS - 1, 3 * DAY_MS + 4], start=1):
        await backend.execute(
            "INSERT INTO messages (cid, seq, mid, sender, device, cmid, kind, body, created_at) "
            "VALUES (?, ?, ?, 'u0', 'd', ?, 1, ?, ?)",
            "d:u0:u1",
            seq,
            f"m{seq}",
            f"c{seq}",
            b"\x80",
            at if backend.kind == "sqlite" else timestamp(at),
        )
    stats = await store.stats(now_ms=3 * DAY_MS + 5, days=3)
    assert stats.sends_per_day == [(DAY_MS, 2), (2 * DAY_MS, 0), (3 * DAY_MS, 1)]
    assert stats.messages == 4


async def test_the_revocation_log_readers(backend: Backend) -> None:
    clock = ManualClock(10_000_000)
    first = SqlRevocationLog(backend.db, dialect(backend), clock=clock)
    second = SqlRevocationLog(backend.db, dialect(backend), clock=clock)
    await first.revoke("before", None)  # older than both readers
    assert (await first.poll()).revoked == []
    assert (await second.poll()).revoked == []
    await first.revoke("u1", None)
    await second.revoke("u2", "s1")
    expected = [Revoked("u1", None), Revoked("u2", "s1")]
    assert (await first.poll()).revoked == expected
    assert (await first.poll()).revoked == []
    assert (await second.poll()).revoked == expected
    # Entries older than an hour go as new ones are written.
    clock.advance(3600.001)
    await first.revoke("u3", None)
    assert await backend.scalar("SELECT COUNT(*) FROM revocation_log") == 1
    assert (await second.poll()).revoked == [Revoked("u3", None)]
