"""RECALL, EDIT, HISTORY and HIDE, and the checks SEND's reply_to, mentions and forward get.

Recall and edit events are messages of their own (kinds 11 and 12, SPEC.md
"The timeline"): they go through the send pipeline like a SEND, so they are
deduplicated by cmid, take the next seq in the persister's transaction (where
the store decides whether the target may be revised; a refusal takes no seq)
and are pushed to every member as MSG. HISTORY and HIDE are answered here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgpack

from sandcat.config import ChatConfig
from sandcat.errors import BadRequest, Forbidden
from sandcat.gateway.peer import Peer
from sandcat.pipeline import Pipeline, SendRequest
from sandcat.protocol import (
    MENTION_ALL,
    SERVER_KINDS,
    Edit,
    Hide,
    History,
    Kind,
    Limits,
    Ok,
    Recall,
    Send,
    encode,
    parse_cid,
    validate_content,
)
from sandcat.store.history import HistoryStore
from sandcat.store.messages import NewMessage, Origin, StoredMessage
from sandcat.view import entry

_ADMINS = ("owner", "admin")


#: An upper bound of a MSG body's encoded bytes besides its content and mentions:
#: keys, cid, mid, from, device and cmid (<= 66 bytes each), integers, forward.
_ENTRY_BYTES = 1024
#: What each mention adds at most (an id of 64 chars and its header).
_MENTION_BYTES = 66


def entries(
    user: str, messages: Sequence[StoredMessage], max_bytes: int, *, newest: bool = False
) -> tuple[list[dict[str, object]], bool]:
    """The MSG bodies of ``messages`` (ascending) that fit in about ``max_bytes``.

    Keeps the oldest (or with ``newest`` the newest) messages whose encoded size,
    bounded from above, adds up to at most ``max_bytes`` -- always at least one,
    so a reader always makes progress. True as the second value if any were cut:
    the reply then says ``more`` (SPEC.md §5.5).
    """
    kept = total = 0
    for message in reversed(messages) if newest else messages:
        size = len(message.body) + _ENTRY_BYTES + _MENTION_BYTES * len(message.mentions or ())
        if kept and total + size > max_bytes:
            break
        total += size
        kept += 1
    chosen = messages[len(messages) - kept :] if newest else messages[:kept]
    return [entry(user, m) for m in chosen], kept < len(messages)


class Timeline:
    """What a connection may do to a conversation's timeline beyond SEND and PULL."""

    def __init__(
        self,
        *,
        history: HistoryStore,
        pipeline: Pipeline,
        chat: ChatConfig,
        limits: Limits,
        max_reply_bytes: int,
    ) -> None:
        self._max_reply_bytes = max_reply_bytes
        self._history = history
        self._pipeline = pipeline
        self._recall_ms = chat.recall_window_s * 1000
        self._edit_ms = chat.edit_window_s * 1000
        self._limits = limits

    # -- SEND's references -------------------------------------------------------

    async def check_send(self, user: str, frame: Send) -> Origin | None:
        """Check ``reply_to``, ``mentions`` and ``forward``; the forward's origin.

        Raises ``BadRequest`` naming the field. A sender who is not a member
        is left to the pipeline, which answers ``forbidden`` as for any send.
        """
        if frame.mentions:
            await self._check_mentions(user, frame.cid, frame.mentions)
        if frame.reply_to is not None:
            try:
                target = await self._visible(user, frame.cid, frame.reply_to)
            except Forbidden:
                return None  # not a member: the pipeline refuses the send
            if target is None or target.recalled:
                raise BadRequest("reply_to: no such message", field="reply_to")
        if frame.forward is None:
            return None
        cid, seq = frame.forward["cid"], frame.forward["seq"]
        # Both checked by the frame.
        assert isinstance(cid, str)
        assert isinstance(seq, int)
        try:
            source = await self._visible(user, cid, seq)
        except Forbidden:
            source = None  # not a member there: the same answer as no such message
        if source is None or source.recalled or source.kind in SERVER_KINDS:
            raise BadRequest("forward: no such message", field="forward")
        if source.kind != frame.kind or msgpack.unpackb(source.body, raw=False) != frame.body:
            raise BadRequest("forward: kind and body must be the original's", field="forward")
        return source.forward or Origin(cid, seq, source.sender)

    async def _visible(self, user: str, cid: str, seq: int) -> StoredMessage | None:
        """Message ``seq`` of ``cid`` if ``user`` may see it, else None; ``Forbidden`` if not
        a member."""
        page = await self._history.history(user, cid, before=None, after=seq - 1, limit=1)
        found = page.messages[0] if page.messages else None
        return found if found is not None and found.seq == seq else None

    async def _check_mentions(self, user: str, cid: str, mentions: tuple[str, ...]) -> None:
        named = [m for m in dict.fromkeys(mentions) if m != MENTION_ALL]
        roles = await self._history.roles(cid, [user, *named])
        if user not in roles:
            return  # not a member: the pipeline refuses the send
        strangers = [m for m in named if m not in roles]
        if strangers:
            raise BadRequest(f"mentions: {strangers[0]} is not a member", field="mentions")
        in_group = parse_cid(cid).kind == "group"
        if MENTION_ALL in mentions and not (in_group and roles[user] in _ADMINS):
            raise BadRequest('mentions: "@all" is for group owners and admins', field="mentions")

    # -- RECALL and EDIT ----------------------------------------------------------

    async def recall(self, conn: Peer, frame: Recall) -> None:
        event: dict[str, object] = {"seq": frame.seq}
        await self._submit(conn, frame, Kind.RECALL, event, window_ms=self._recall_ms)

    async def edit(self, conn: Peer, frame: Edit) -> None:
        try:
            validate_content(Kind.TEXT, frame.body, self._limits)
        except ValueError as exc:
            raise BadRequest(f"body: {exc}", field="body") from exc
        event = {"seq": frame.seq, "body": frame.body}
        replacement = msgpack.packb(frame.body, use_bin_type=True)
        await self._submit(
            conn, frame, Kind.EDIT, event, window_ms=self._edit_ms, replacement=replacement
        )

    async def _submit(
        self,
        conn: Peer,
        frame: Recall | Edit,
        kind: Kind,
        event: dict[str, object],
        *,
        window_ms: int,
        replacement: bytes | None = None,
    ) -> None:
        message = NewMessage(
            sender=conn.user,
            device=conn.device,
            cid=frame.cid,
            cmid=frame.cmid,
            kind=kind,
            body=msgpack.packb(event, use_bin_type=True),
            target=frame.seq,
            window_ms=window_ms,
            replacement=replacement,
        )
        await self._pipeline.submit(
            SendRequest(
                message=message,
                body=event,
                origin=conn,
                rid=frame.rid,
                received=time.perf_counter(),
            )
        )

    # -- HISTORY and HIDE ----------------------------------------------------------

    async def history(self, conn: Peer, frame: History) -> None:
        if frame.mid is not None:
            message = await self._history.message(conn.user, frame.mid)
            page = await self._history.history(
                conn.user, message.cid, before=None, after=None, limit=1
            )
            body: dict[str, object] = {
                "msgs": [entry(conn.user, message)],
                "more": False,
                "min_seq": page.min_seq,
                "max_seq": page.max_seq,
            }
        else:
            assert frame.cid is not None  # the frame has one or the other
            page = await self._history.history(
                conn.user, frame.cid, before=frame.before, after=frame.after, limit=frame.limit
            )
            # With after: the oldest fit and newer ones are left; else the newest fit.
            msgs, cut = entries(
                conn.user, page.messages, self._max_reply_bytes, newest=frame.after is None
            )
            body = {
                "msgs": msgs,
                "more": page.more or cut,
                "min_seq": page.min_seq,
                "max_seq": page.max_seq,
            }
        conn.push(encode(Ok(rid=frame.rid, body=body)))

    async def hide(self, conn: Peer, frame: Hide, *, now_ms: int) -> None:
        await self._history.hide(conn.user, frame.cid, frame.seqs, now_ms=now_ms)
        conn.push(encode(Ok(rid=frame.rid, body={})))
