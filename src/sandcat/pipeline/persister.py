"""The persister: the only task that writes messages, one transaction per batch.

A batch commits whole or not at all. If the store fails, every send in the
batch is failed back with a retryable error and nothing is acked (G1); no seq
was consumed because the transaction rolled back (G3).

One send with a value the store refuses (``RejectedValue``: text PostgreSQL
cannot hold) must not fail the sends batched with it, which may be anybody's:
the batch is split in halves, each committed on its own, down to the send at
fault, which alone is refused with ``bad_request``. That costs about
``2 log2(n)`` more transactions per refused send and nothing when no send is
refused. The halves keep their order, so each conversation's seqs still
follow the order of its sends (G3).
"""

from __future__ import annotations

import logging
import time

import trio

from sandcat.clock import Clock
from sandcat.errors import RejectedValue, StoreUnavailable
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.router import Outcomes
from sandcat.pipeline.sequencer import SendRequest
from sandcat.store.messages import MessageStore, Refused

log = logging.getLogger(__name__)


async def run_persister(
    batches: trio.MemoryReceiveChannel[list[SendRequest]],
    committed: trio.MemorySendChannel[tuple[list[SendRequest], Outcomes]],
    store: MessageStore,
    *,
    clock: Clock,
    open_direct: bool,
    timeout_s: float,
    metrics: ServerMetrics,
) -> None:
    """Commit batches until ``batches`` is closed and drained, then close ``committed``."""

    async def commit(batch: list[SendRequest]) -> None:
        outcomes: Outcomes
        started = time.perf_counter()
        try:
            with trio.fail_after(timeout_s):
                outcomes = await store.append(
                    [request.message for request in batch],
                    now_ms=clock(),
                    open_direct=open_direct,
                )
        except RejectedValue as exc:
            if len(batch) > 1:
                middle = len(batch) // 2
                await commit(batch[:middle])
                await commit(batch[middle:])
                return
            request = batch[0]
            log.warning(
                "send %r by user %s refused by the store: %s",
                request.message.cmid,
                request.message.sender,
                exc,
            )
            outcomes = [Refused("bad_request", "the send holds a value that cannot be stored")]
        except (StoreUnavailable, trio.TooSlowError) as exc:
            log.warning("batch of %d sends failed, nothing stored: %s", len(batch), exc)
            outcomes = None
        else:
            done = time.perf_counter()
            metrics.store_append.observe(done - started)
            metrics.batch_size.observe(len(batch))
            for request in batch:
                metrics.send_to_commit.observe(done - request.received)
        await committed.send((batch, outcomes))

    async with batches, committed:
        async for batch in batches:
            await commit(batch)
