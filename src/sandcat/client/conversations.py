"""Per-conversation delivery state: gap detection and dedupe (G4, G6).

For each conversation the SDK knows the highest seq handed to the
application (``delivered``: every seq up to it was delivered, once), the
highest seq known to exist (from pushes, acks, SYNC and PULL), and the
messages that arrived ahead of a missing one. A message at or below
``delivered``, or already buffered, is a duplicate and is dropped: delivery
is exactly once, in seq order, per conversation.

This module does no I/O: the session feeds it what arrives and asks it what
is ready to deliver and which range is missing (and must be pulled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sandcat.protocol import Msg

__all__ = ["Conversations"]


@dataclass(slots=True)
class _Conversation:
    delivered: int
    known_max: int
    ahead: dict[int, Msg] = field(default_factory=dict)
    #: Seqs this user hid (HIDE): a pull skips them, so they never arrive.
    hidden: set[int] = field(default_factory=set)


class Conversations:
    """Delivery positions of every conversation the session has seen.

    Args:
        positions: the last seq the application already has, per cid
            (conversations not listed start where `start` or the first
            message puts them).
        max_ahead: most messages buffered per conversation while an earlier
            one is missing. Bounds memory when the application reads slowly;
            a message that does not fit is dropped and pulled again later.
    """

    def __init__(self, positions: Mapping[str, int] | None = None, *, max_ahead: int = 400) -> None:
        self._convs = {
            cid: _Conversation(delivered=seq, known_max=seq)
            for cid, seq in (positions or {}).items()
        }
        self._max_ahead = max_ahead
        self.duplicates = 0

    def __contains__(self, cid: str) -> bool:
        return cid in self._convs

    def positions(self) -> dict[str, int]:
        """The last seq delivered per conversation (to resume a later session from)."""
        return {cid: conv.delivered for cid, conv in self._convs.items()}

    def start(self, cid: str, seq: int) -> None:
        """Deliver only messages after ``seq`` in a conversation not yet tracked."""
        if cid not in self._convs:
            self._convs[cid] = _Conversation(delivered=seq, known_max=seq)

    def note_max(self, cid: str, max_seq: int) -> None:
        """Record that ``cid`` has messages up to ``max_seq`` (from SYNC or PULL)."""
        conv = self._conversation(cid)
        conv.known_max = max(conv.known_max, max_seq)

    def skip_to(self, cid: str, min_seq: int) -> None:
        """Messages below ``min_seq`` are gone (retention): stop waiting for them."""
        conv = self._conversation(cid)
        if min_seq > conv.delivered + 1:
            conv.delivered = min_seq - 1
            conv.ahead = {seq: msg for seq, msg in conv.ahead.items() if seq > conv.delivered}

    def offer(self, msg: Msg) -> bool:
        """Take a message from any source; False if it is a duplicate."""
        conv = self._conversation(msg.cid)
        conv.known_max = max(conv.known_max, msg.seq)
        if msg.seq <= conv.delivered or msg.seq in conv.ahead:
            self.duplicates += 1
            return False
        if len(conv.ahead) >= self._max_ahead:
            highest = max(conv.ahead)
            if msg.seq > highest:
                return True  # known to exist (known_max), so it is pulled again
            del conv.ahead[highest]
        conv.ahead[msg.seq] = msg
        return True

    def pop_ready(self) -> Msg | None:
        """The next message to deliver (the one after ``delivered`` of some cid)."""
        for conv in self._convs.values():
            while conv.delivered + 1 in conv.hidden:
                conv.hidden.discard(conv.delivered + 1)
                conv.delivered += 1
            msg = conv.ahead.pop(conv.delivered + 1, None)
            if msg is not None:
                conv.delivered = msg.seq
                return msg
        return None

    def hole(self, cid: str) -> int | None:
        """If ``cid`` misses the message after the last delivered one, that seq - 1.

        The message is known to exist (a later one arrived, or SYNC said so)
        but has not arrived: pull ``seq > hole`` to fill it.
        """
        conv = self._convs.get(cid)
        if conv is None or conv.known_max <= conv.delivered:
            return None
        if conv.delivered + 1 in conv.ahead or conv.delivered + 1 in conv.hidden:
            return None
        return conv.delivered

    def missing(self) -> tuple[str, int] | None:
        """Some conversation with a hole to pull, as ``(cid, after)``, or None."""
        for cid in self._convs:
            after = self.hole(cid)
            if after is not None:
                return cid, after
        return None

    def pulled(self, cid: str, after: int, seqs: list[int]) -> int:
        """A pull of ``seq > after`` returned ``seqs`` (ascending).

        A PULL reply leaves out the messages this user hid (SPEC.md "The timeline"),
        so a seq missing between ``after`` and the last one returned will
        never come: stop waiting for it. Returns how many seqs that was.
        """
        conv = self._conversation(cid)
        skipped = 0
        expected = after + 1
        for seq in seqs:
            for gap in range(max(expected, conv.delivered + 1), seq):
                if gap not in conv.ahead:
                    conv.hidden.add(gap)
                    skipped += 1
            expected = max(expected, seq + 1)
        return skipped

    def settle(self, cid: str, max_seq: int) -> int:
        """The server has nothing to add after ``delivered``, up to ``max_seq``.

        Called when a pull for a hole came back empty (or was refused), so
        the hole is not pulled forever. Returns how many seqs were skipped.
        """
        conv = self._conversation(cid)
        conv.known_max = max_seq
        skipped = max(0, max_seq - conv.delivered)
        if skipped:
            self.skip_to(cid, max_seq + 1)
        return skipped

    def _conversation(self, cid: str) -> _Conversation:
        # A conversation first seen now (a new one, or one created while we were
        # away) is delivered from its start.
        conv = self._convs.get(cid)
        if conv is None:
            conv = self._convs[cid] = _Conversation(delivered=0, known_max=0)
        return conv
