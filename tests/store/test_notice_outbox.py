"""The relational inbox as the outbox of a MongoDB inbox (``NoticeOutbox``), on SQLite
and PostgreSQL."""

from __future__ import annotations

from sandcat.store.inbox import NewNotice
from tests.store.backend import Backend


async def test_pending_lists_by_user_and_nseq_and_remove_deletes_only_those(
    backend: Backend,
) -> None:
    outbox = backend.inbox
    await outbox.post([NewNotice("b", "t", {"k": 1}), NewNotice("a", "t", {})], now_ms=5)
    await outbox.post([NewNotice("a", "u", {"k": [1, "x"]})], now_ms=6)
    pending = await outbox.pending(10)
    assert [(n.user, n.nseq, n.type) for n in pending] == [
        ("a", 1, "t"),
        ("a", 2, "u"),
        ("b", 1, "t"),
    ]
    assert pending[1].data == {"k": [1, "x"]}
    assert pending[1].created_at == 6
    assert len(await outbox.pending(2)) == 2
    await outbox.remove(pending[:2])
    assert [(n.user, n.nseq) for n in await outbox.pending(10)] == [("b", 1)]
    # The nseq counter is untouched: SQL nseqs are outbox keys, never reused.
    (later,) = await outbox.post([NewNotice("a", "t", {})], now_ms=7)
    assert later.nseq == 3
