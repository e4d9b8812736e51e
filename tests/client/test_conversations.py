"""The gap-detection and dedupe state machine, in memory."""

from __future__ import annotations

from sandcat.client import Conversations
from sandcat.protocol import Msg

CID = "g:crew"


def msg(seq: int, cid: str = CID) -> Msg:
    return Msg(cid=cid, seq=seq, mid=f"m{seq}", sender="ann", kind=1, body={"text": "x"}, ts=1)


def drain(conversations: Conversations) -> list[int]:
    seqs = []
    while (ready := conversations.pop_ready()) is not None:
        seqs.append(ready.seq)
    return seqs


def test_messages_are_released_in_seq_order_once() -> None:
    conversations = Conversations()
    for seq in (2, 1, 3, 2, 1):
        conversations.offer(msg(seq))
    assert drain(conversations) == [1, 2, 3]
    assert conversations.duplicates == 2
    assert not conversations.offer(msg(3))  # already delivered
    assert conversations.positions() == {CID: 3}


def test_a_message_past_a_missing_one_is_a_hole_to_pull() -> None:
    conversations = Conversations({CID: 4})
    conversations.offer(msg(7))
    assert drain(conversations) == []
    assert conversations.missing() == (CID, 4)
    for seq in (5, 6):
        conversations.offer(msg(seq))
    assert conversations.missing() is None
    assert drain(conversations) == [5, 6, 7]


def test_sync_max_seq_reveals_a_hole_without_any_push() -> None:
    conversations = Conversations({CID: 2})
    conversations.note_max(CID, 5)
    assert conversations.hole(CID) == 2
    conversations.start(CID, 100)  # known conversations keep their position
    assert conversations.hole(CID) == 2


def test_a_new_conversation_starts_where_told_or_at_its_beginning() -> None:
    conversations = Conversations()
    conversations.start("g:old", 10)
    conversations.offer(msg(11, "g:old"))
    conversations.offer(msg(3, "g:new"))
    assert conversations.missing() == ("g:new", 0)
    assert [m.cid for m in iter(conversations.pop_ready, None)] == ["g:old"]


def test_the_buffer_ahead_of_a_hole_is_bounded_and_keeps_the_lowest() -> None:
    conversations = Conversations(max_ahead=3)
    for seq in (5, 4, 3, 6):  # 6 does not fit
        conversations.offer(msg(seq))
    conversations.offer(msg(2))  # fits by evicting 5
    conversations.offer(msg(1))  # fits by evicting 4
    assert drain(conversations) == [1, 2, 3]
    assert conversations.missing() == (CID, 3)  # 4-6 are known to exist: pulled again


def test_retention_and_empty_pulls_skip_instead_of_pulling_forever() -> None:
    conversations = Conversations({CID: 0})
    conversations.offer(msg(12))
    conversations.skip_to(CID, 10)  # 1-9 are gone
    assert conversations.missing() == (CID, 9)
    assert conversations.settle(CID, 11) == 2  # the server has nothing up to 11
    assert drain(conversations) == [12]
