"""The chat session: requests, sends with resend, and ordered delivery.

A `Session` is one device of one user, connected for as long as the
`open_session` block runs (`sandcat.client.client`). Its tasks live in that block's nursery:

- the link (`sandcat.client.link`): connects, says HELLO, recovers
  (SYNC, then PULL what is missing), keeps the token fresh, reconnects;
- the deliverer (`sandcat.client.delivery`): hands messages to the
  application in seq order per conversation, exactly once, and pulls the
  holes it finds (G4, G6).

Sends survive connection loss: `send` resends with the same ``cmid`` on the
next connection until it is acked, and the server answers a resend with the
original ack (G2). A message this device sent is delivered to it too, from
its ack, so `messages` is each conversation's whole log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import trio

from sandcat.protocol import (
    CallEvent,
    ClientFrame,
    ConvSet,
    Edit,
    Hide,
    History,
    InboxAck,
    InboxPull,
    Kind,
    Msg,
    Notify,
    Ok,
    Ping,
    Presence,
    Pull,
    Read,
    Readers,
    ReadState,
    Recall,
    Send,
    ServerFrame,
    Sync,
    TypingEvent,
)

from .connection import Connection, ConnectionLost
from .credentials import Credentials
from .delivery import Delivery
from .errors import SandcatClientError, SessionClosed
from .link import Link
from .options import SessionOptions, SessionStatistics
from .replies import Ack, InboxPage, Page, ReadersPage, SyncResult
from .signals import Signals

__all__ = ["Session"]

log = logging.getLogger(__name__)

#: Wait before resending after ``unavailable`` when the server names no delay.
_DEFAULT_RETRY_MS = 200


class Session:
    """A connected device; make one with `open_session`."""

    def __init__(
        self,
        ws_url: str,
        credentials: Credentials,
        *,
        device: str,
        platform: str,
        positions: Mapping[str, int] | None,
        options: SessionOptions,
        nursery: trio.Nursery,
    ) -> None:
        self.device = device
        self._options = options
        self._nursery = nursery
        self._stats = SessionStatistics()
        self._delivery = Delivery(positions, options=options, stats=self._stats)
        self._read_states_in, self._read_states_out = trio.open_memory_channel[ReadState](
            options.read_state_buffer
        )
        self._notices_in, self._notices_out = trio.open_memory_channel[Notify](
            options.notice_buffer
        )
        self._closed: SessionClosed | trio.ClosedResourceError | None = None
        #: Test hook: return True to drop a MSG push as if it were lost.
        self.drop_push: Callable[[Msg], bool] | None = None
        self._link = Link(
            ws_url,
            credentials,
            device=device,
            platform=platform,
            options=options,
            stats=self._stats,
            on_push=self._on_push,
            recover=self._recover,
            on_change=self._delivery.wake_up,
        )
        #: Typing, presence and calls (SPEC.md §5.9-5.11).
        self.signals = Signals(self._link, options, self._stats)

    async def _recover(self, conn: Connection, sync: SyncResult, first: bool) -> None:
        await self._delivery.recover(conn, sync, first)
        await self.signals.resubscribe(conn)

    async def _start(self) -> None:
        """Connect (returns once the first connection is ready), then deliver."""
        await self._nursery.start(self._link.run)
        self._nursery.start_soon(self._delivery.run, self._link)

    @property
    def user(self) -> str:
        """The user id the server authenticated (from the HELLO reply)."""
        return self._link.user

    # -- requests ------------------------------------------------------------------------

    async def send(
        self,
        cid: str,
        text: str | None = None,
        *,
        kind: int | None = None,
        body: object = None,
        cmid: str | None = None,
        reply_to: int | None = None,
        mentions: tuple[str, ...] | None = None,
        forward: Mapping[str, object] | None = None,
    ) -> Ack:
        """Send a message: ``text``, or a ``body`` of content ``kind``.

        ``forward`` (``{cid, seq}``) sends a copy of that message: ``kind`` and
        ``body`` must be its own. (This device's own copy, built from the ack,
        does not know the origin's author; other devices get ``forward`` in full.)

        The message gets a fresh ``cmid`` unless one is given (give the
        same one to resend a message whose outcome is unknown). Until the
        server acks it, the send is resent with that ``cmid`` on every new
        connection and after ``unavailable``.

        Returns:
            the ack: the message's seq and mid in the conversation.

        Raises:
            SandcatClientError: the server refused it (``forbidden``,
                ``bad_request``, ``rate_limited`` with ``retry_after_ms``, ...).
            trio.TooSlowError: no ack within ``operation_timeout_s``; the
                message may or may not have been stored.
            SessionClosed: the session ended first.
        """
        if (text is None) == (kind is None):
            raise TypeError("send() takes text, or kind and body")
        if text is not None:
            kind, body = Kind.TEXT, {"text": text}
        assert kind is not None
        cmid = cmid or uuid.uuid4().hex
        fields: dict[str, Any] = {
            "cid": cid,
            "cmid": cmid,
            "kind": kind,
            "body": body,
            "reply_to": reply_to,
            "mentions": mentions,
            "forward": forward,
        }
        Send(rid=1, **fields)  # check the fields once, here, in the caller

        def record(ok: Mapping[str, Any]) -> None:
            # Runs in the reader, before any later frame: the device's own
            # message takes its place in the conversation's order.
            ack = Ack.from_body(ok, cmid)
            own = Msg(
                cid=ack.cid,
                seq=ack.seq,
                mid=ack.mid,
                sender=self.user,
                kind=int(kind),
                body=body,
                ts=ack.ts,
                cmid=cmid,
                device=self.device,
                reply_to=reply_to,
                mentions=mentions,
            )
            self._delivery.offer(own)

        self._stats.sends_pending += 1
        try:
            ok = await self._request(lambda rid: Send(rid=rid, **fields), on_ok=record, send=True)
        finally:
            self._stats.sends_pending -= 1
        return Ack.from_body(ok.body, cmid)

    async def recall(self, cid: str, seq: int, *, cmid: str | None = None) -> Ack:
        """Recall message ``seq`` of ``cid``: the ack of the recall event (kind 11).

        Resent like a SEND until acked. Raises `SandcatClientError`
        (``forbidden``: not yours or too late; ``bad_request``: no such message).
        """
        event: dict[str, object] = {"seq": seq}
        return await self._revise(
            cmid, Kind.RECALL, event, lambda rid, c: Recall(rid=rid, cid=cid, cmid=c, seq=seq)
        )

    async def edit(self, cid: str, seq: int, text: str, *, cmid: str | None = None) -> Ack:
        """Replace the text of message ``seq`` of ``cid``: the ack of the edit event (kind 12)."""
        body = {"text": text}
        event: dict[str, object] = {"seq": seq, "body": body}
        return await self._revise(
            cmid,
            Kind.EDIT,
            event,
            lambda rid, c: Edit(rid=rid, cid=cid, cmid=c, seq=seq, body=body),
        )

    async def _revise(
        self,
        cmid: str | None,
        kind: Kind,
        event: dict[str, object],
        build: Callable[[int, str], Recall | Edit],
    ) -> Ack:
        cmid = cmid or uuid.uuid4().hex
        build(1, cmid)  # check the fields once, here, in the caller

        def record(ok: Mapping[str, Any]) -> None:
            ack = Ack.from_body(ok, cmid)
            own = Msg(
                cid=ack.cid,
                seq=ack.seq,
                mid=ack.mid,
                sender=self.user,
                kind=kind,
                body=event,
                ts=ack.ts,
                cmid=cmid,
                device=self.device,
            )
            self._delivery.offer(own)

        ok = await self._request(lambda rid: build(rid, cmid), on_ok=record, send=True)
        return Ack.from_body(ok.body, cmid)

    async def history(
        self,
        cid: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> Page:
        """A page of ``cid``, ascending: after ``after``, before ``before``, or the latest."""
        ok = await self._request(
            lambda rid: History(rid=rid, cid=cid, before=before, after=after, limit=limit)
        )
        return Page.from_body(ok.body)

    async def message(self, mid: str) -> Msg:
        """One message by its mid (`SandcatClientError` ``not_found`` if not visible)."""
        ok = await self._request(lambda rid: History(rid=rid, mid=mid))
        return Page.from_body(ok.body).msgs[0]

    async def hide(self, cid: str, seqs: list[int]) -> None:
        """Hide messages of ``cid`` from this user (every device), not from others."""
        await self._request(lambda rid: Hide(rid=rid, cid=cid, seqs=tuple(seqs)))

    async def pull(self, cid: str, after: int = 0, limit: int = 50) -> Page:
        """Messages of ``cid`` with seq > ``after``, ascending (at most ``limit``)."""
        ok = await self._request(lambda rid: Pull(rid=rid, cid=cid, after=after, limit=limit))
        return Page.from_body(ok.body)

    async def sync(self, since: int | None = None, *, limit: int | None = None) -> SyncResult:
        """Every conversation, or those changed after version ``since``; with ``limit``,
        a page of the oldest changes (``more``: sync again from its ``version``)."""
        ok = await self._request(lambda rid: Sync(rid=rid, since=since, limit=limit))
        return SyncResult.from_body(ok.body)

    async def read(self, cid: str, seq: int) -> None:
        """Mark ``cid`` read up to ``seq`` (other devices and the peer are told)."""
        await self._request(lambda rid: Read(rid=rid, cid=cid, seq=seq))

    async def conv_set(
        self,
        cid: str,
        *,
        pinned: bool | None = None,
        muted: bool | None = None,
        hidden: bool | None = None,
        clear: bool = False,
    ) -> Mapping[str, Any]:
        """Change this user's own settings of ``cid``; the settings after the change
        (``cid, pinned, muted, hidden, cleared_seq``). The other devices get CONV_STATE."""
        ok = await self._request(
            lambda rid: ConvSet(
                rid=rid, cid=cid, pinned=pinned, muted=muted, hidden=hidden, clear=clear or None
            )
        )
        return ok.body

    async def readers(
        self, cid: str, seq: int, *, after: str | None = None, limit: int = 500
    ) -> ReadersPage:
        """Which members of the group ``cid`` have read up to ``seq`` (one page)."""
        ok = await self._request(
            lambda rid: Readers(rid=rid, cid=cid, seq=seq, after=after, limit=limit)
        )
        return ReadersPage.from_body(ok.body)

    async def inbox(self, after: int | None = None, limit: int = 50) -> InboxPage:
        """Inbox notices with nseq > ``after`` (default: after this device's ack)."""
        ok = await self._request(lambda rid: InboxPull(rid=rid, after=after, limit=limit))
        return InboxPage.from_body(ok.body)

    async def inbox_ack(self, upto: int) -> None:
        """This device has handled every notice up to ``upto``."""
        await self._request(lambda rid: InboxAck(rid=rid, upto=upto))

    async def receive_notice(self) -> Notify:
        """The next NOTIFY push (some may be dropped; see SessionOptions)."""
        try:
            return await self._notices_out.receive()
        except trio.EndOfChannel:
            raise self._ended() from None

    async def ping(self) -> int:
        """Round-trip to the server; returns its time (ms since the epoch)."""
        ok = await self._request(lambda rid: Ping(rid=rid))
        server_time = ok.body.get("server_time")
        return server_time if isinstance(server_time, int) else 0

    async def _request(
        self,
        build: Callable[[int], ClientFrame],
        *,
        on_ok: Callable[[Mapping[str, Any]], None] | None = None,
        send: bool = False,
    ) -> Ok:
        # Every request here is idempotent (SEND by its cmid), so a request
        # whose connection dropped is made again on the next one.
        with trio.fail_after(self._options.operation_timeout_s):
            while True:
                conn = await self._link.connection(sending=send)
                try:
                    return await conn.call(build, on_ok=on_ok)
                except (ConnectionLost, trio.TooSlowError) as exc:
                    log.debug("request interrupted (%s); retrying", exc)
                except SandcatClientError as exc:
                    if exc.code != "unavailable":
                        raise
                    await trio.sleep((exc.retry_after_ms or _DEFAULT_RETRY_MS) / 1000)
                if send:
                    self._stats.resends += 1

    # -- delivery ------------------------------------------------------------------------

    async def receive_message(self) -> Msg:
        """The next message of any conversation (per conversation in seq order).

        Raises:
            SessionClosed: the session ended, and every message it had
                received was delivered.
            trio.ClosedResourceError: the session was closed with `aclose`.
        """
        try:
            return await self._delivery.receive.receive()
        except trio.EndOfChannel:
            raise self._ended() from None

    def receive_message_nowait(self) -> Msg:
        """Like `receive_message`; raises `trio.WouldBlock` if none is queued."""
        try:
            return self._delivery.receive.receive_nowait()
        except trio.EndOfChannel:
            raise self._ended() from None

    def messages(self) -> AsyncIterator[Msg]:
        """Iterate over `receive_message` (``async for msg in session.messages()``).

        The iteration ends quietly after `aclose`, and raises `SessionClosed`
        when the session ends otherwise. Leaving the loop early is fine: the
        iterator holds nothing (it is not an async generator).
        """
        return _Messages(self)

    async def receive_read_state(self) -> ReadState:
        """The next READ_STATE push (some may be dropped; see SessionOptions)."""
        try:
            return await self._read_states_out.receive()
        except trio.EndOfChannel:
            raise self._ended() from None

    def positions(self) -> dict[str, int]:
        """The last seq delivered per conversation; pass to `open_session` to resume."""
        return self._delivery.conversations.positions()

    def statistics(self) -> SessionStatistics:
        self._stats.duplicates = self._delivery.conversations.duplicates
        return self._stats

    async def aclose(self) -> None:
        """Close the connection (code 1000) and stop the session. Idempotent."""
        if self._closed is None:
            self._closed = trio.ClosedResourceError("the session was closed")
        await self._link.aclose()
        self._nursery.cancel_scope.cancel()
        self._delivery.close()
        self._read_states_in.close()
        self._notices_in.close()
        self.signals.close()

    def _ended(self) -> SessionClosed | trio.ClosedResourceError:
        self._closed = self._closed or self._link.closed or SessionClosed(None, "session ended")
        return self._closed

    def _on_push(self, frame: ServerFrame) -> None:
        if isinstance(frame, Msg):
            if self.drop_push is not None and self.drop_push(frame):
                return
            self._stats.pushes += 1
            self._delivery.offer(frame)
        elif isinstance(frame, ReadState):
            try:
                self._read_states_in.send_nowait(frame)
            except (trio.WouldBlock, trio.ClosedResourceError):
                self._stats.read_states_dropped += 1
        elif isinstance(frame, Notify):
            try:
                self._notices_in.send_nowait(frame)
            except (trio.WouldBlock, trio.ClosedResourceError):
                self._stats.notices_dropped += 1
        elif isinstance(frame, TypingEvent | Presence | CallEvent):
            self.signals.offer(frame)


class _Messages:
    def __init__(self, session: Session) -> None:
        self._session = session

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Msg:
        try:
            return await self._session.receive_message()
        except trio.ClosedResourceError:
            raise StopAsyncIteration from None
