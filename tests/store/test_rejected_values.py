"""A value the store refuses fails only its own send (issue 12, item 1), on both engines.

The edges refuse U+0000 and lone surrogates first (tests/security); these tests
hand the store such values directly, as a path the edges miss would.
"""

from __future__ import annotations

import trio

from sandcat.errors import RejectedValue
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.persister import run_persister
from sandcat.pipeline.router import Outcomes
from sandcat.pipeline.sequencer import SendRequest
from sandcat.store.messages import Appended, NewMessage, Refused
from tests.store.backend import Backend, make_user

AB = "d:a:b"
GROUP = "g:team"
NOW = 1_700_000_000_000
#: A cmid neither engine can store (a lone surrogate cannot be encoded as UTF-8).
BAD = "bad\ud800"


def new(sender: str, cid: str, cmid: str) -> NewMessage:
    return NewMessage(sender=sender, device="d", cid=cid, cmid=cmid, kind=1, body=b"\xa2hi")


async def _scene(backend: Backend) -> None:
    await backend.users(*(make_user(u) for u in ("a", "b", "c")))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    await backend.open_conversation(GROUP, "group", ("a", "b", "c"))


async def test_a_batch_with_an_unstorable_value_raises_rejected_and_stores_nothing(
    backend: Backend,
) -> None:
    await _scene(backend)
    batches = [[new("a", AB, "1"), new("b", AB, BAD)]]
    if backend.kind == "postgres":
        batches.append([new("a", AB, "1"), new("b", AB, "nul\x00")])
    for batch in batches:
        try:
            await backend.messages.append(batch, now_ms=NOW, open_direct=False)
        except RejectedValue:
            pass
        else:
            raise AssertionError(f"{batch[1].cmid!r} was stored")
    page = await backend.messages.pull("a", AB, after=0, limit=10)
    assert page.messages == ()


class _Sink:
    user = "a"
    device = "d"

    def push(self, data: bytes) -> None:
        raise AssertionError("the persister pushes nothing itself")


async def test_the_persister_refuses_only_the_send_the_store_rejects(backend: Backend) -> None:
    await _scene(backend)
    messages = [
        new("a", AB, "1"),
        new("c", GROUP, BAD),
        new("b", AB, "2"),
        new("c", GROUP, "3"),
        new("a", GROUP, "4"),
        new("b", AB, BAD),
        new("a", AB, "5"),
    ]
    batch = [
        SendRequest(message=m, body=None, origin=_Sink(), rid=i + 1) for i, m in enumerate(messages)
    ]
    send_batches, batches = trio.open_memory_channel[list[SendRequest]](1)
    committed, receive_committed = trio.open_memory_channel[tuple[list[SendRequest], Outcomes]](
        len(batch) * 2
    )
    with trio.fail_after(20):
        await send_batches.send(batch)
        await send_batches.aclose()
        await run_persister(
            batches,
            committed,
            backend.messages,
            clock=lambda: NOW,
            open_direct=False,
            timeout_s=10,
            metrics=ServerMetrics.create(),
        )
    outcomes: dict[int, Appended | Refused] = {}
    parts = 0
    async for part, results in receive_committed:
        parts += 1
        assert results is not None
        outcomes.update(
            {request.rid: result for request, result in zip(part, results, strict=True)}
        )
    refused = {rid for rid, result in outcomes.items() if isinstance(result, Refused)}
    assert refused == {2, 6}
    assert all(outcomes[rid] == Refused("bad_request", outcomes[rid].message) for rid in refused)  # type: ignore[union-attr]
    seqs = {
        rid: (result.message.cid, result.message.seq)
        for rid, result in outcomes.items()
        if isinstance(result, Appended)
    }
    # Every good send is stored, each conversation's seqs in send order, no holes.
    assert seqs == {1: (AB, 1), 3: (AB, 2), 4: (GROUP, 1), 5: (GROUP, 2), 7: (AB, 3)}
    assert parts > 1
