"""ReachStore conformance: a conversation's writers and a user's friends, on both databases."""

from __future__ import annotations

from typing import Any

from sandcat.store.contacts import FriendRequest
from sandcat.store.postgres.dialect import DIALECT as POSTGRES
from sandcat.store.reach import ReachStore
from sandcat.store.sql.reach import SqlReachStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import Backend, make_user


def reach_of(backend: Backend) -> ReachStore:
    db: Any = backend.db
    return SqlReachStore(db, SQLITE if backend.kind == "sqlite" else POSTGRES)


async def befriend(backend: Backend, a: str, b: str) -> None:
    request = FriendRequest(id=f"r-{a}-{b}", from_user=a, to_user=b, created_at=1, updated_at=1)
    await backend.contacts.create_request(request)
    await backend.contacts.accept_request(request.id, user=b, remark="", now_ms=2)


async def test_writers_are_the_members_who_may_send(backend: Backend) -> None:
    await backend.users(*(make_user(name) for name in ("a", "b", "c")))
    await backend.open_conversation(cid="g:g1", kind="group", members=("a", "b"))
    await backend.open_conversation(cid="g:g1", kind="group", members=("c",), can_send=False)
    reach = reach_of(backend)

    assert await reach.writers("g:g1") == {"a", "b"}
    assert await reach.writers("g:nothing") == frozenset()


async def test_friends_leave_out_deleted_and_blocked_ones(backend: Backend) -> None:
    await backend.users(*(make_user(name) for name in ("a", "b", "c", "d")))
    for other in ("b", "c", "d"):
        await befriend(backend, "a", other)
    await backend.contacts.delete_friend("a", "c", now_ms=3)
    await backend.block("d", "a")
    reach = reach_of(backend)

    assert await reach.friends("a") == ["b"]
    assert await reach.friends("b") == ["a"]
    assert await reach.friends("d") == []


async def test_a_direct_conversation_may_be_opened_unless_blocked_or_disabled(
    backend: Backend,
) -> None:
    await backend.users(*(make_user(name) for name in ("a", "b", "c")))
    await backend.block("c", "a")
    reach = reach_of(backend)

    assert await reach.may_open_direct("a", "b")
    assert not await reach.may_open_direct("a", "c")
    assert not await reach.may_open_direct("c", "a")
    assert not await reach.may_open_direct("a", "nobody")
    await backend.execute("UPDATE users SET disabled = ? WHERE id = 'b'", True)
    assert not await reach.may_open_direct("a", "b")
