"""The router: acks senders and pushes committed messages to every device.

It runs after the persister's commit, so nothing is acked or pushed that is
not durable (G1). Each message is encoded once for all recipients, and once
more with ``cmid`` and ``device`` for the sender's other devices
(protocol/SPEC.md §4.12, MSG).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import trio

from sandcat.metrics import ServerMetrics
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.sequencer import Ack, RecentAcks, SendRequest
from sandcat.protocol import Err, ErrorCode, Msg, encode, encode_msg
from sandcat.store.messages import Appended, Origin, Refused, StoredMessage

log = logging.getLogger(__name__)

#: What a client is told to wait before resending after a failed commit.
RETRY_AFTER_MS = 1000

Outcomes = Sequence[Appended | Refused] | None


def msg_frame(message: StoredMessage, body: object, *, own: bool) -> Msg:
    """The MSG push (or PULL entry) for a stored message."""
    return Msg(
        cid=message.cid,
        seq=message.seq,
        mid=message.mid,
        sender=message.sender,
        kind=message.kind,
        body=body,
        ts=message.ts,
        cmid=message.cmid if own else None,
        device=message.device if own else None,
        reply_to=message.reply_to,
        mentions=message.mentions,
        forward=None if message.forward is None else origin_body(message.forward),
        edited_at=message.edited_at,
        recalled=message.recalled or None,
    )


def msg_push(message: StoredMessage, body: object, *, own: bool) -> bytes:
    """The encoded MSG push of a stored message: ``encode(msg_frame(...))`` without
    building and re-checking the frame (``protocol.encode_msg``)."""
    return encode_msg(
        cid=message.cid,
        seq=message.seq,
        mid=message.mid,
        sender=message.sender,
        kind=message.kind,
        body=body,
        ts=message.ts,
        cmid=message.cmid if own else None,
        device=message.device if own else None,
        reply_to=message.reply_to,
        mentions=message.mentions,
        forward=None if message.forward is None else origin_body(message.forward),
        edited_at=message.edited_at,
        recalled=message.recalled or None,
    )


def origin_body(origin: Origin) -> dict[str, object]:
    """MSG's ``forward`` map: where a forwarded copy came from."""
    return {"cid": origin.cid, "seq": origin.seq, "from": origin.sender}


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
                    request.origin.push(
                        encode(
                            Err(
                                rid=request.rid,
                                code=ErrorCode.UNAVAILABLE,
                                message="storage unavailable, nothing was stored; resend",
                                retry_after_ms=RETRY_AFTER_MS,
                            )
                        )
                    )
                continue
            for request, outcome in zip(batch, outcomes, strict=True):
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
                    _deliver(directory, outcome, request)


def _deliver(directory: Directory, outcome: Appended, request: SendRequest) -> None:
    stored = outcome.message
    plain: bytes | None = None
    own: bytes | None = None
    for member in outcome.members:
        for outlet in directory.outlets(member):
            if outlet is request.origin:
                continue
            if member == stored.sender:
                own = own or msg_push(stored, request.body, own=True)
                outlet.push(own)
            else:
                plain = plain or msg_push(stored, request.body, own=False)
                outlet.push(plain)
