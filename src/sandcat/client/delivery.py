"""Delivery: messages to the application in seq order, exactly once (G4, G6).

Messages reach a session three ways: pushed (MSG), acked (the device's own
sends) and pulled. All of them go into `Conversations`, which drops
duplicates and buffers what arrives ahead of a hole. The deliverer task
hands the application every message that is next in its conversation, and
when none is, pulls the first hole it knows of. It blocks while the
application's queue is full; nothing else does (the reader never waits for
the application), so a slow reader costs memory bounded by ``max_ahead``
and later pulls, never a stalled connection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import trio

from sandcat.protocol import Msg, Pull

from .connection import Connection, ConnectionLost
from .conversations import Conversations
from .errors import SandcatClientError
from .link import Link
from .options import SessionOptions, SessionStatistics
from .replies import Page, SyncResult

__all__ = ["Delivery"]

log = logging.getLogger(__name__)


class Delivery:
    """The session's conversations and the application's message queue."""

    def __init__(
        self,
        positions: Mapping[str, int] | None,
        *,
        options: SessionOptions,
        stats: SessionStatistics,
    ) -> None:
        self.conversations = Conversations(positions, max_ahead=options.max_ahead)
        self._resume = positions is not None
        self._pull_limit = options.pull_limit
        self._stats = stats
        self._send, self.receive = trio.open_memory_channel[Msg](options.message_buffer)
        self._wake = trio.Event()

    def offer(self, msg: Msg) -> None:
        """Take a message from any source (duplicates are dropped)."""
        if self.conversations.offer(msg):
            self.wake_up()

    def wake_up(self) -> None:
        """Something changed: a message, or the connection; look again."""
        self._wake.set()
        self._wake = trio.Event()

    def close(self) -> None:
        self._send.close()

    async def recover(self, conn: Connection, sync: SyncResult, first: bool) -> None:
        """After (re)connecting: learn what exists, then pull one page per hole.

        On the first connection of a session started without positions,
        conversations start at their newest message (only new ones are
        delivered).
        """
        conversations = self.conversations
        for conv in sync.convs:
            if first and not self._resume:
                conversations.start(conv.cid, conv.max_seq)
            conversations.skip_to(conv.cid, conv.min_seq)
            conversations.note_max(conv.cid, conv.max_seq)
        for conv in sync.convs:
            after = conversations.hole(conv.cid)
            if after is not None:
                await self._backfill(conn, conv.cid, after)

    async def run(self, link: Link) -> None:
        """Deliver until the session ends; pull holes over ``link``'s connection."""
        async with self._send:
            while link.closed is None:
                msg = self.conversations.pop_ready()
                if msg is not None:
                    await self._send.send(msg)
                    continue
                wake = self._wake
                hole = self.conversations.missing()
                conn = link.current()
                if hole is not None and conn is not None:
                    try:
                        await self._backfill(conn, *hole)
                    except (ConnectionLost, trio.TooSlowError) as exc:
                        log.debug("backfill interrupted: %s", exc)
                    continue
                await wake.wait()

    async def _backfill(self, conn: Connection, cid: str, after: int) -> None:
        limit = self._pull_limit
        try:
            ok = await conn.call(lambda rid: Pull(rid=rid, cid=cid, after=after, limit=limit))
        except SandcatClientError as exc:
            # Not a member any more (or the conversation is gone): nothing to fill.
            log.warning("cannot backfill %s after %d: %s", cid, after, exc)
            self._stats.skipped += self.conversations.settle(cid, after)
            return
        self._stats.pulls += 1
        page = Page.from_body(ok.body)
        self.conversations.skip_to(cid, page.min_seq)
        for msg in page.msgs:
            self.conversations.offer(msg)
        self._stats.skipped += self.conversations.pulled(cid, after, [m.seq for m in page.msgs])
        if not any(msg.seq > after for msg in page.msgs):
            # The server has nothing after `after`: do not ask again forever.
            self._stats.skipped += self.conversations.settle(cid, page.max_seq)
        self.wake_up()
