"""The router: acks senders and pushes committed messages to every device.

It runs after the persister's commit, so nothing is acked or pushed that is
not durable (G1); the push is ``pipeline/delivery.py``'s, shared with the
consumer and group system messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import trio

from sandcat.metrics import ServerMetrics
from sandcat.pipeline.delivery import deliver
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.sequencer import Ack, RecentAcks, SendRequest
from sandcat.protocol import Err, ErrorCode, encode
from sandcat.store.messages import Appended, Refused

log = logging.getLogger(__name__)

#: What a client is told to wait before resending after a failed commit.
RETRY_AFTER_MS = 1000
_UNSTORED = "storage unavailable, nothing was stored"

Outcomes = Sequence[Appended | Refused] | None


async def run_router(
    committed: trio.MemoryReceiveChannel[tuple[list[SendRequest], Outcomes]],
    directory: Directory,
    recent: RecentAcks,
    metrics: ServerMetrics,
) -> None:
    """Route batches until ``committed`` is closed and drained."""
    errors = metrics.errors
    async with committed:
        async for batch, outcomes in committed:
            if outcomes is None:
                errors.inc(len(batch), "ws", ErrorCode.UNAVAILABLE.value)
                for request in batch:
                    if request.settle is not None:
                        request.settle(Refused("unavailable", _UNSTORED))
                    request.origin.push(
                        encode(
                            Err(
                                rid=request.rid,
                                code=ErrorCode.UNAVAILABLE,
                                message=f"{_UNSTORED}; resend",
                                retry_after_ms=RETRY_AFTER_MS,
                            )
                        )
                    )
                continue
            for request, outcome in zip(batch, outcomes, strict=True):
                if request.settle is not None:
                    request.settle(outcome)
                if isinstance(outcome, Refused):
                    errors.inc(1, "ws", outcome.code)
                    request.origin.push(
                        encode(
                            Err(
                                rid=request.rid,
                                code=ErrorCode(outcome.code),
                                message=outcome.message,
                            )
                        )
                    )
                    continue
                stored = outcome.message
                ack = Ack(stored.cid, stored.seq, stored.mid, stored.ts)
                request.origin.push(ack.frame(request.rid))
                metrics.send_to_ack.observe(time.perf_counter() - request.received)
                recent.put((stored.sender, stored.cid, stored.cmid), ack)
                if not outcome.duplicate:
                    deliver(
                        directory,
                        stored,
                        outcome.members,
                        body=request.body,
                        origin=request.origin,
                    )
