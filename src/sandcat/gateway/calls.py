"""1:1 call signalling: invite, ring, accept, reject, cancel, timeout, busy, SDP, ICE, hangup.

The server relays signalling between the two users' devices and keeps the
call's state in the call book (memory, or Redis in a cluster) so that it
knows who is in a call and answers ``busy`` itself. A call is bound to the
caller's inviting device and, once answered, the callee's answering device;
only those two may drive it (anyone else: ``forbidden``). Every device of
the callee rings; when one answers, the others get ``accepted`` with that
device and stop ringing.

How a call ends becomes a call-log message (kind 8, SPEC.md §9) in the
direct conversation, sent through the send pipeline like any message (so it
gets a seq and reaches every device) with the caller as its sender, the
device ``_system`` (as group system messages: server-authored) and a cmid
derived from the call id, so it is written once however many instances try.
Both parties' devices get ``ended`` once that log is committed (or refused),
so a PULL on ``ended`` finds it.
The instance where a call was placed owns its ring timer and keeps its book
entries alive; a device that disconnects ends its call after
``disconnect_grace_s`` unless it is back by then.
"""

from __future__ import annotations

import logging
from typing import Protocol

import msgpack
import trio

from sandcat.clock import Clock
from sandcat.config import CallsConfig
from sandcat.errors import BadRequest, Conflict, Forbidden, NotFound, StoreUnavailable
from sandcat.gateway.beacon import Beacon, Outlets, Target
from sandcat.ids import direct_cid, new_id
from sandcat.pipeline import Pipeline
from sandcat.protocol import Call, CallEvent, Kind, Ok, encode, validate_content
from sandcat.store.calls import CallBook, CallRecord
from sandcat.store.messages import NewMessage, Refused
from sandcat.store.presence import PresenceBook
from sandcat.store.reach import ReachStore
from sandcat.store.sql.groups.timeline import SYSTEM_DEVICE

log = logging.getLogger(__name__)


class Caller(Protocol):
    @property
    def user(self) -> str: ...
    @property
    def device(self) -> str: ...
    def push(self, data: bytes) -> None: ...


class CallDesk:
    def __init__(
        self,
        book: CallBook,
        reach: ReachStore,
        beacon: Beacon,
        presence: PresenceBook,
        pipeline: Pipeline,
        hub: Outlets,
        *,
        config: CallsConfig,
        clock: Clock,
        claim_ttl_s: float,
        open_direct: bool = False,
    ) -> None:
        self._open_direct = open_direct
        self._book = book
        self._reach = reach
        self._beacon = beacon
        self._presence = presence
        self._pipeline = pipeline
        self._hub = hub
        self._config = config
        self._clock = clock
        self._claim_ttl_s = claim_ttl_s
        #: Calls placed here (their ring timers run here; kept alive from here).
        self._owned: set[str] = set()
        #: Devices connected here that are bound to a call.
        self._bound: dict[tuple[str, str], str] = {}
        self._timers: trio.Nursery | None = None

    @property
    def _ttl_ms(self) -> int:
        return int(self._claim_ttl_s * 1000)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as timers:
            self._timers = timers
            timers.start_soon(self._keep_alive)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                # Connections closing after shutdown find no timers to start. Cleared
                # while the nursery's body still runs: once the body has left, the
                # nursery closes as soon as its last timer ends, before this task is
                # scheduled again, and a start_soon in between would fail.
                self._timers = None

    async def handle(self, conn: Caller, frame: Call) -> None:
        if frame.action == "invite":
            await self._invite(conn, frame)
            return
        assert frame.call is not None  # every other action requires it (frame check)
        call = await self._book.get(frame.call)
        if call is None:
            raise NotFound("no such call (it may have ended)")
        if conn.user not in (call.caller, call.callee):
            raise Forbidden("not your call")
        match frame.action:
            case "accept":
                await self._accept(conn, call)
            case "reject":
                await self._close(conn, call, ringing=True, side="callee", outcome="declined")
            case "cancel":
                await self._close(conn, call, ringing=True, side="caller", outcome="cancelled")
            case "hangup":
                await self._hangup(conn, call)
            case _:
                self._relay(conn, call, frame)
        conn.push(encode(Ok(rid=frame.rid, body={})))

    def left(self, user: str, device: str) -> None:
        """A device connected here went away: end its call unless it is back within the grace.

        Called once the presence book has recorded the disconnect, so the check
        after the grace sees it (even with a grace of 0).
        """
        call_id = self._bound.pop((user, device), None)
        if call_id is not None and self._timers is not None:
            self._timers.start_soon(self._grace, user, device, call_id)

    async def _grace(self, user: str, device: str, call_id: str) -> None:
        await trio.sleep(self._config.disconnect_grace_s)
        try:
            await self._hang_up_if_gone(user, device, call_id)
        except StoreUnavailable as exc:
            log.warning("call %s: disconnect not applied: %s", call_id, exc.message)

    async def _hang_up_if_gone(self, user: str, device: str, call_id: str) -> None:
        if await self._presence.connected(user, device, now_ms=self._clock()):
            if any(conn.device == device for conn in self._hub.outlets(user)):
                self._bound[user, device] = call_id  # back here: watch it again
            return
        call = await self._book.get(call_id)
        if call is None or call.party(user, device) is None:
            return
        closed = await self._book.close(call_id)
        if closed is not None:
            outcome = "completed" if closed.state == "active" else "cancelled"
            await self._end(closed, outcome, "disconnected")

    # -- the steps ------------------------------------------------------------------------

    async def _invite(self, conn: Caller, frame: Call) -> None:
        assert frame.peer is not None
        assert frame.media is not None
        if frame.peer == conn.user:
            raise BadRequest("peer: cannot call yourself", field="peer")
        if not await self._may_talk(conn.user, frame.peer):
            raise Forbidden("you cannot call this user")
        call = CallRecord(
            id=new_id(),
            caller=conn.user,
            caller_device=conn.device,
            callee=frame.peer,
            media=frame.media,
            created_ms=self._clock(),
        )
        opened = await self._book.open(call, ttl_ms=self._ttl_ms)
        if opened == "caller_busy":
            raise Conflict("you are in a call already")
        if opened == "callee_busy":
            conn.push(encode(Ok(rid=frame.rid, body={"call": call.id, "state": "busy"})))
            await self._log(call, "missed", 0)
            return
        self._bound[conn.user, conn.device] = call.id
        self._owned.add(call.id)
        if self._timers is not None:
            self._timers.start_soon(self._ring_timer, call.id)
        conn.push(encode(Ok(rid=frame.rid, body={"call": call.id, "state": "ringing"})))
        ring = CallEvent(call=call.id, action="ring", sender=call.caller, media=call.media)
        self._beacon.push([(call.callee, None, None)], encode(ring))

    async def _may_talk(self, user: str, peer: str) -> bool:
        """Whether ``user`` may message ``peer`` in their direct conversation (as SEND does)."""
        writers = await self._reach.writers(direct_cid(user, peer))
        if writers:
            return user in writers and peer in writers
        # No conversation yet: with dm_policy "anyone" a first message opens one.
        return self._open_direct and await self._reach.may_open_direct(user, peer)

    async def _accept(self, conn: Caller, call: CallRecord) -> None:
        if conn.user != call.callee:
            raise Forbidden("only the callee accepts a call")
        answered = await self._book.answer(call.id, conn.device, now_ms=self._clock())
        if answered is None:
            raise Conflict("the call is not ringing")
        self._bound[conn.user, conn.device] = call.id
        event = encode(CallEvent(call=call.id, action="accepted", device=conn.device))
        self._beacon.push([(call.caller, None, None), (call.callee, None, conn.device)], event)

    async def _close(
        self, conn: Caller, call: CallRecord, *, ringing: bool, side: str, outcome: str
    ) -> None:
        if side == "caller" and call.party(conn.user, conn.device) != "caller":
            raise Forbidden("only the calling device cancels a call")
        if side == "callee" and conn.user != call.callee:
            raise Forbidden("only the callee rejects a call")
        closed = await self._book.close(call.id, ringing_only=ringing)
        if closed is None:
            raise Conflict("the call is not ringing")
        await self._end(closed, outcome, "cancelled" if side == "caller" else "rejected")

    async def _hangup(self, conn: Caller, call: CallRecord) -> None:
        if call.party(conn.user, conn.device) is None:
            raise Forbidden("this device is not in the call")
        closed = await self._book.close(call.id)
        if closed is None:
            raise NotFound("no such call (it may have ended)")
        if closed.state == "active":
            await self._end(closed, "completed", "hangup")
        else:
            await self._end(closed, "cancelled", "cancelled")

    def _relay(self, conn: Caller, call: CallRecord, frame: Call) -> None:
        side = call.party(conn.user, conn.device)
        if side is None:
            raise Forbidden("this device is not in the call")
        if call.state != "active":
            raise Conflict(f"{frame.action} needs an answered call")
        peer: Target = (
            (call.callee, call.callee_device, None)
            if side == "caller"
            else (call.caller, call.caller_device, None)
        )
        event = CallEvent(
            call=call.id, action=frame.action, sdp=frame.sdp, candidate=frame.candidate
        )
        self._beacon.push([peer], encode(event))

    async def _end(self, call: CallRecord, outcome: str, reason: str) -> None:
        duration = max(0, self._clock() - call.answered_ms) if call.state == "active" else 0
        event = CallEvent(
            call=call.id, action="ended", outcome=outcome, reason=reason, duration_ms=duration
        )
        self._owned.discard(call.id)
        for key in ((call.caller, call.caller_device), (call.callee, call.callee_device)):
            if self._bound.get(key) == call.id:
                del self._bound[key]
        try:
            await self._log(call, outcome, duration)
        finally:
            # After the log is stored, so a PULL on "ended" finds it; ended even if it is not.
            self._beacon.push([(call.caller, None, None), (call.callee, None, None)], encode(event))

    async def _log(self, call: CallRecord, outcome: str, duration_ms: int) -> None:
        body = {
            "call": call.id,
            "media": call.media,
            "outcome": outcome,
            "duration_ms": duration_ms,
        }
        validate_content(Kind.CALL_LOG, body, server_authored=True)
        message = NewMessage(
            sender=call.caller,
            device=SYSTEM_DEVICE,
            cid=direct_cid(call.caller, call.callee),
            cmid=f"call-{call.id}",
            kind=Kind.CALL_LOG,
            body=msgpack.packb(body, use_bin_type=True),
        )
        logged = await self._pipeline.commit(message, body)
        if isinstance(logged, Refused):
            log.warning("call log refused: %s: %s (call %s)", logged.code, logged.message, call.id)

    # -- timers ---------------------------------------------------------------------------

    async def _ring_timer(self, call_id: str) -> None:
        await trio.sleep(self._config.ring_timeout_s)
        try:
            closed = await self._book.close(call_id, ringing_only=True)
            if closed is not None:
                await self._end(closed, "missed", "timeout")
        except StoreUnavailable as exc:
            log.warning("ring timeout of %s not applied: %s", call_id, exc.message)

    async def _keep_alive(self) -> None:
        """Refresh the book entries of calls placed here; forget those that ended."""
        while True:
            await trio.sleep(self._claim_ttl_s / 3)
            try:
                for call_id in list(self._owned):
                    if await self._book.get(call_id) is None:
                        self._owned.discard(call_id)
                await self._book.touch(sorted(self._owned), ttl_ms=self._ttl_ms)
            except StoreUnavailable as exc:
                log.warning("call keep-alive failed: %s", exc.message)
