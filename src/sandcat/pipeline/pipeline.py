"""The assembled send path and its life cycle."""

from __future__ import annotations

import trio

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.errors import Unavailable
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.persister import run_persister
from sandcat.pipeline.router import Outcomes, run_router
from sandcat.pipeline.sequencer import RecentAcks, SendRequest, run_sequencer
from sandcat.store.messages import Appended, MessageStore, NewMessage, Refused


class _Nowhere:
    """The origin of an internal writer's message: no socket to ack (``commit`` returns)."""

    device = ""

    def push(self, data: bytes) -> None:
        pass


_NOWHERE = _Nowhere()


class Pipeline:
    """The entry of the send path. Readers ``submit``; the app ``aclose``s to drain."""

    def __init__(self, sends: trio.MemorySendChannel[SendRequest]) -> None:
        self._sends = sends
        self.drained = trio.Event()

    async def submit(self, request: SendRequest) -> None:
        """Queue a send, waiting while the pipeline is full (back-pressure).

        Raises ``Unavailable`` once the pipeline is closing.
        """
        try:
            await self._sends.send(request)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise Unavailable("server is shutting down; resend elsewhere") from exc

    async def aclose(self) -> None:
        """Stop taking sends; those already queued still commit and get acked."""
        await self._sends.aclose()

    async def commit(self, message: NewMessage, body: object) -> Appended | Refused:
        """Commit a message a server part wrote (a call log) through the send path.

        It is ordered, deduplicated by ``cmid`` and pushed to the members like
        every SEND. ``Refused`` with code "unavailable" when the store failed
        or the pipeline is closing (nothing was stored).
        """
        settled: list[Appended | Refused] = []
        done = trio.Event()

        def settle(outcome: Appended | Refused) -> None:
            settled.append(outcome)
            done.set()

        request = SendRequest(message=message, body=body, origin=_NOWHERE, rid=1, settle=settle)
        try:
            await self.submit(request)
        except Unavailable as exc:
            return Refused("unavailable", exc.message)
        # Queued sends are always answered, even while the pipeline drains.
        await done.wait()
        return settled[0]

    def statistics(self) -> trio.MemoryChannelStatistics:
        return self._sends.statistics()


async def run_pipeline(
    store: MessageStore,
    directory: Directory,
    config: Config,
    clock: Clock,
    *,
    metrics: ServerMetrics | None = None,
    task_status: trio.TaskStatus[Pipeline] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run sequencer, persister and router until the pipeline is closed and drained."""
    settings = config.pipeline
    metrics = metrics or ServerMetrics.create()
    sends, sends_out = trio.open_memory_channel[SendRequest](settings.send_queue)
    batches_in, batches_out = trio.open_memory_channel[list[SendRequest]](0)
    committed_in, committed_out = trio.open_memory_channel[tuple[list[SendRequest], Outcomes]](1)
    recent = RecentAcks(settings.recent_acks, ttl_s=settings.recent_acks_ttl_s, clock=clock)
    pipeline = Pipeline(sends)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: run_sequencer(
                    sends_out,
                    batches_in,
                    recent,
                    max_batch=settings.max_batch,
                    window_s=settings.batch_window_ms / 1000,
                )
            )
            nursery.start_soon(
                lambda: run_persister(
                    batches_out,
                    committed_in,
                    store,
                    clock=clock,
                    open_direct=config.chat.dm_policy == "anyone",
                    timeout_s=settings.store_timeout_s,
                    metrics=metrics,
                )
            )
            nursery.start_soon(run_router, committed_out, directory, recent, metrics)
            task_status.started(pipeline)
    finally:
        pipeline.drained.set()
